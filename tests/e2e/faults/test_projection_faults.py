"""Projection fault tests: workers killed with SIGKILL mid-batch, a group losing a member, the served gateway.

Workers are real processes (``syncbackbone projections run``); afterwards the live read
models must equal a fresh replay of the log (verify finds no drift) and hold each
event exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from support import bearer

from syncbackbone.domain.documents import DocumentCreated, DocumentPatched, aggregate_id
from syncbackbone.domain.records import EventMeta
from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.bootstrap import Backbone
from syncbackbone.infra.common.net import free_port
from syncbackbone.infra.postgres.read_models.claims import lock_key

pytestmark = pytest.mark.slow


class Quiet:
    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


@pytest.fixture
def side(backbone: Backbone) -> Iterator[ReadSide]:
    rs = backbone.read_side()
    yield rs
    rs.close()


def append_workload(backbone: Backbone, documents: int, patches: int) -> int:
    """Append ``documents`` creations, then ``patches`` patches of each; return the event count."""
    run = uuid.uuid4().hex[:6]
    for version in range(1, patches + 2):
        events = [
            backbone.codec.new_event(
                aggregate_id("f", f"{run}-{i}"),
                version,
                DocumentCreated({"i": i}) if version == 1 else DocumentPatched({f"p{version}": version}),
                EventMeta(causation_id=uuid.uuid4().hex, actor="fault"),
            )
            for i in range(documents)
        ]
        backbone.log.append(events)
    return documents * (patches + 1)


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "syncbackbone.infra.cli", "projections", "run"], env=env, stdin=subprocess.DEVNULL
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def in_transaction(pg_dsn: str, namespace: str) -> bool:
    """Whether some backend is inside a transaction writing the documents read model now."""
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            " AND query LIKE %s",
            [f'%"{namespace}__documents"%'],
        ).fetchone()
    return bool(row and row[0])


def owners(pg_dsn: str, namespace: str) -> int:
    """How many processes hold partition claims of the documents projection."""
    key = lock_key(f"syncbackbone:{namespace}:documents")
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::bigint::oid"
            " AND objsubid = 2",
            [key],
        ).fetchone()
    return int(row[0]) if row else 0


def applied(side: ReadSide) -> int:
    return sum(side.store("documents").checkpoints().values())


def wait_until(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def assert_equals_a_fresh_replay(side: ReadSide, events: int, pg_dsn: str, namespace: str) -> None:
    wait_until(lambda: all(lag == 0 for lag in side.lag().values()), 120)
    assert side.verify(progress=lambda *_: Quiet()) == []
    with psycopg.connect(pg_dsn) as conn:
        audit = conn.execute(f'SELECT count(*) FROM "{namespace}__audit".audit').fetchone()
        feed = conn.execute(f'SELECT count(*), count(DISTINCT (id, version)) FROM "{namespace}__changes".changes')
        assert audit == (events,) and feed.fetchone() == (events, events)
    assert all(side.store(n).dead_letters(5) == [] for n in side.names())


def test_a_worker_killed_mid_batch_applies_nothing_twice_and_skips_nothing(
    env: dict[str, str], backbone: Backbone, side: ReadSide, pg_dsn: str
) -> None:
    events = append_workload(backbone, documents=6000, patches=4)
    first = start_worker(env)
    try:
        wait_until(lambda: applied(side) > 0 and in_transaction(pg_dsn, env["SYNC_NAMESPACE"]), 60)
        kill(first)  # inside a batch: between its first write and its commit
    finally:
        kill(first)
    assert applied(side) < events, "the worker finished before it could be killed"
    second = start_worker(env)
    try:
        assert_equals_a_fresh_replay(side, events, pg_dsn, env["SYNC_NAMESPACE"])
    finally:
        kill(second)


def test_a_group_member_killed_hands_its_partitions_to_the_survivor(
    env: dict[str, str], backbone: Backbone, side: ReadSide, pg_dsn: str
) -> None:
    events = append_workload(backbone, documents=8000, patches=4)
    workers = [start_worker(env), start_worker(env)]
    try:
        wait_until(lambda: owners(pg_dsn, env["SYNC_NAMESPACE"]) == 2, 60)  # the two split the partitions
        kill(workers[0])
        assert applied(side) < events, "the group finished before a member could be killed"
        assert_equals_a_fresh_replay(side, events, pg_dsn, env["SYNC_NAMESPACE"])
    finally:
        for w in workers:
            kill(w)


def test_serve_http_answers_a_write_with_read_your_writes(env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"127.0.0.1:{port}"],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: port_answers(base), 60)
        body = {"type": "CreateDocument", "collection": "notes", "id": "h1", "data": {"via": "http"}}
        result = httpx.post(f"{base}/commands", json=body, timeout=30, headers=bearer()).json()
        wait = ",".join(f"{p['partition']}:{p['offset']}" for p in result["positions"])
        got = httpx.get(
            f"{base}/collections/notes/documents/h1", params={"positions": wait, "timeout": 10}, headers=bearer()
        )
        assert got.status_code == 200 and got.json()["data"] == {"via": "http"}
        assert httpx.get(f"{base}/health").json()["ok"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            kill(proc)
    assert proc.returncode == 0


def port_answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False
