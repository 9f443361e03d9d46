"""Fault tests: processors killed with SIGKILL mid-batch, retried commands, a group losing a member.

Processors run as real processes (``syncbackbone serve``); the checks read the log
back through a fresh adapter, as any reader would.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest

from syncbackbone.commands.models import PutDocument
from syncbackbone.commands.results import CommandResult
from syncbackbone.infra.bootstrap import Backbone

pytestmark = pytest.mark.slow


def start_processor(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "syncbackbone.infra.cli", "serve"], env=env, stdin=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def workload(n: int, docs: int, tag: str) -> list[PutDocument]:
    return [PutDocument(collection="f", id=f"{tag}{i % docs}", data={"i": i}) for i in range(n)]


def wait_for(backbone: Backbone, ids: list[str], timeout_s: float) -> dict[str, CommandResult]:
    results: dict[str, CommandResult] = {}
    deadline = time.monotonic() + timeout_s
    while len(results) < len(ids) and time.monotonic() < deadline:
        results.update(backbone.bus.wait_results([i for i in ids if i not in results], 1.0))
    return results


def all_events(backbone: Backbone) -> list:  # type: ignore[type-arg]
    events = []
    for p in range(backbone.log.partitions):
        offset, end = 0, backbone.log.end_offset(p)
        while offset < end:
            batch = backbone.log.read_partition(p, offset, 5000)
            if not batch:
                break
            events.extend(batch)
            offset = batch[-1].position.offset + 1
    return events


def assert_exactly_once(backbone: Backbone, results: dict[str, CommandResult]) -> None:
    events = all_events(backbone)
    per_command = collections.Counter(e.event.meta.causation_id for e in events)
    accepted = [r for r in results.values() if r.status == "accepted"]
    assert accepted and all(per_command[r.command_id] == 1 for r in accepted)
    assert sum(per_command.values()) == len(accepted)  # nothing written that was not answered
    versions: dict[str, list[int]] = collections.defaultdict(list)
    for e in events:
        versions[e.aggregate_id].append(e.version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())  # G1: gapless per aggregate


def test_a_processor_killed_mid_batch_loses_and_duplicates_nothing(env: dict[str, str], backbone: Backbone) -> None:
    cmds = workload(3000, 200, "k")
    ids = [c.command_id for c in cmds]
    first = start_processor(env)
    try:
        backbone.bus.send(cmds)
        partial = wait_for(backbone, ids[:1], 60)
        assert partial, "the first processor never answered"
        os.kill(first.pid, signal.SIGKILL)
    finally:
        stop(first)
    second = start_processor(env)
    try:
        results = wait_for(backbone, ids, 120)
    finally:
        stop(second)
    assert len(results) == len(ids), "every submitted command has a result"
    assert_exactly_once(backbone, results)


def test_the_same_command_submitted_twice_yields_its_events_once(env: dict[str, str], backbone: Backbone) -> None:
    cmd = PutDocument(collection="f", id="twice", data={"v": 1})
    proc = start_processor(env)
    try:
        backbone.bus.send([cmd, cmd])
        first = wait_for(backbone, [cmd.command_id], 60)[cmd.command_id]
        again = backbone.submit(cmd, timeout_s=60)
    finally:
        stop(proc)
    assert first == again and first.status == "accepted"
    assert len(backbone.log.find_command(cmd.aggregate_id, cmd.command_id)) == 1


def test_a_group_member_killed_hands_its_partitions_to_the_survivor(env: dict[str, str], backbone: Backbone) -> None:
    procs = [start_processor(env)]
    try:
        cmds = workload(2000, 100, "g")
        ids = [c.command_id for c in cmds]
        backbone.bus.send(cmds[:500])
        assert len(wait_for(backbone, ids[:500], 90)) == 500  # the first member owns every partition now
        procs.append(start_processor(env))
        backbone.bus.send(cmds[500:1000])
        assert len(wait_for(backbone, ids[:1000], 90)) == 1000
        os.kill(procs[0].pid, signal.SIGKILL)
        backbone.bus.send(cmds[1000:])
        results = wait_for(backbone, ids, 120)
    finally:
        for p in procs:
            stop(p)
    assert len(results) == len(ids)
    assert_exactly_once(backbone, results)
