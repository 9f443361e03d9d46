"""replay, snapshot, audit export and bench recovery, run as a user runs them: real processes, real PostgreSQL."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from support import cli

from syncbackbone.domain.documents import DocumentCreated
from syncbackbone.domain.records import EventMeta
from syncbackbone.infra.bootstrap import bootstrap
from syncbackbone.infra.settings import load_settings


def submit(env: dict[str, str], doc_id: str, data: str, kind: str = "PutDocument") -> None:
    done = cli("submit", kind, "--collection", "notes", "--id", doc_id, "--data", data, env=env)
    assert done.returncode == 0, done.stderr


def no_traceback(*runs: subprocess.CompletedProcess[str]) -> None:
    for run in runs:
        assert "Traceback" not in run.stderr, run.stderr


def test_after_the_demo_replay_shows_a_documents_history_and_its_state_at_an_earlier_time(
    zero_config: dict[str, str],
) -> None:
    demo = cli("demo", env=zero_config)
    assert demo.returncode == 0, demo.stderr
    found = re.search(r"commands for (notes/welcome-\w+)", demo.stdout)
    assert found, demo.stdout
    agg = found.group(1)
    now = cli("replay", agg, "--json", env=zero_config)
    assert now.returncode == 0, now.stderr
    replayed = json.loads(now.stdout)
    assert [h["type"] for h in replayed["history"]][:2] == ["DocumentCreated", "DocumentPatched"]
    assert replayed["state"]["data"]["title"] == "Hello, world"
    assert {h["actor"] for h in replayed["history"]} == {"demo-user"}
    assert f"syncbackbone replay {agg}" in demo.stdout
    first = replayed["history"][0]["recorded_at"]
    earlier = cli("replay", agg, "--as-of", first, env=zero_config)
    assert earlier.returncode == 0, earlier.stderr
    assert f"{agg} at v1" in earlier.stdout and "DocumentCreated" in earlier.stdout
    assert 'state: v1 (exists) {"tags": ["sync"], "title": "Hello"}' in earlier.stdout
    by_version = cli("replay", agg, "--to-version", "2", env=zero_config)
    assert "state: v2 (exists)" in by_version.stdout and '"done": true' in by_version.stdout


def test_snapshot_verify_and_audit_export_work_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    for i in range(3):
        submit(env, "a", json.dumps({"i": i}))
    submit(env, "b", "{}")
    taken = cli("snapshot", env=env)
    assert taken.returncode == 0, taken.stderr
    assert "took 2 snapshots of 2 aggregates" in taken.stdout
    verified = cli("snapshot", "--verify", env=env)
    assert (verified.returncode, verified.stdout.strip()) == (0, "no drift in 2 aggregates")
    out = tmp_path / "audit.csv"
    exported = cli("audit", "export", "--out", str(out), "--format", "csv", "--aggregate", "notes/a", env=env)
    assert exported.returncode == 0, exported.stderr
    assert "audit export: 3/3 events" in exported.stderr and "exported 3 events" in exported.stdout
    with out.open() as f:
        assert [row["version"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    replayed = cli("replay", "notes/a", env=env)
    assert "snapshot: v3 matches the replay" in replayed.stdout


def test_bad_replay_input_gets_a_one_line_error_naming_it_and_no_traceback(
    env: dict[str, str], pg_dsn: str, namespace: str
) -> None:
    submit(env, "a", '{"t": 1}')
    unknown = cli("replay", "notes/ghost", env=env)
    assert unknown.returncode == 2 and "error: no events for aggregate 'notes/ghost'" in unknown.stderr
    malformed = cli("replay", "ghost", env=env)
    assert malformed.returncode == 2 and "is not of the form 'collection/id'" in malformed.stderr
    bad_time = cli("replay", "notes/a", "--as-of", "yesterday", env=env)
    assert bad_time.returncode == 2 and "--as-of 'yesterday' is not an ISO 8601 time" in bad_time.stderr
    too_early = cli("replay", "notes/a", "--as-of", "2001-01-01T00:00:00Z", env=env)
    assert too_early.returncode == 2 and "notes/a did not exist yet at 2001-01-01" in too_early.stderr
    no_traceback(unknown, malformed, bad_time, too_early)


def test_a_corrupt_snapshot_and_an_event_without_its_schema_are_named_and_the_replay_goes_on(
    env: dict[str, str], pg_dsn: str, namespace: str
) -> None:
    submit(env, "a", '{"t": 1}')
    assert cli("snapshot", env=env).returncode == 0
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{namespace}".snapshots SET state = %s', [b"\xff\xfe"])
    backbone = bootstrap(load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace))
    try:
        event = backbone.codec.new_event("notes/a", 2, DocumentCreated({"t": 2}), EventMeta())
        backbone.log.append([replace(event, meta=replace(event.meta, schema_version=4))])  # no v4 schema
        backbone.log.append([backbone.codec.new_event("notes/a", 3, DocumentCreated({"t": 3}), EventMeta())])
    finally:
        backbone.close()
    replayed = cli("replay", "notes/a", env=env)
    assert replayed.returncode == 1
    assert "state: v3 (exists)" in replayed.stdout and "v3" in replayed.stdout
    errors = [line for line in replayed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert "snapshot of notes/a (v1" in errors[0] and "cannot be decoded" in errors[0]
    assert "notes/a v2 (DocumentCreated): no schema syncbackbone.DocumentCreated v4" in errors[1]
    no_traceback(replayed)


@pytest.mark.parametrize("log", ["embedded", "kafka"])
def test_bench_recovery_prints_restart_times_with_and_without_snapshots(env: dict[str, str], log: str) -> None:
    done = cli("bench", "recovery", "--events", "4000", "--only", log, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if re.match(r"^\s+[\d,]+\s+\d", line)]
    assert [row.split()[0] for row in rows] == ["1,000", "4,000"]
    reads = [re.findall(r"\(([\d,]+) events read", row) for row in rows]
    assert [without for without, _ in reads] == ["1,000", "4,000"]  # without snapshots: the whole history
    assert [with_ for _, with_ in reads] == ["510", "510"]  # with: K/2 + 1 events per aggregate, whatever the length
