"""The read side's command line, run as a user runs it: real processes on real PostgreSQL."""

from __future__ import annotations

import json

import psycopg
from support import cli

from syncbackbone.domain.documents import DocumentCreated
from syncbackbone.domain.records import EventMeta
from syncbackbone.infra.bootstrap import bootstrap
from syncbackbone.infra.settings import load_settings


def submit(env: dict[str, str], doc_id: str, data: str) -> dict[str, object]:
    done = cli("submit", "PutDocument", "--collection", "notes", "--id", doc_id, "--data", data, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_submitted_document_can_be_queried_back_as_json(env: dict[str, str]) -> None:
    result = submit(env, "n1", '{"title": "hi", "n": 3}')
    wait = ",".join(f"{p['partition']}:{p['offset']}" for p in result["positions"])  # type: ignore[attr-defined]

    one = cli("query", "documents", "notes", "n1", "--positions", wait, "--json", env=env)
    found = cli("query", "documents", "notes", "--where", "n=3", "--json", env=env)
    none = cli("query", "documents", "notes", "--where", "title=bye", "--json", env=env)

    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["data"] == {"title": "hi", "n": 3} and json.loads(one.stdout)["version"] == 1
    assert [d["id"] for d in json.loads(found.stdout)["items"]] == ["n1"]
    assert json.loads(none.stdout)["items"] == []


def test_verify_exits_non_zero_on_drift_until_a_rebuild_repairs_it(env: dict[str, str], pg_dsn: str) -> None:
    submit(env, "a", '{"v": 1}')
    assert cli("query", "documents", "notes", "a", env=env).returncode == 0
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{env["SYNC_NAMESPACE"]}__documents".documents SET version = 7')

    drifted = cli("verify", "documents", env=env)
    rebuilt = cli("rebuild", "documents", env=env)
    clean = cli("verify", env=env)

    assert drifted.returncode == 1 and "drift: documents" in drifted.stdout
    assert "verify documents: 1/1 events" in drifted.stderr  # the progress line
    assert rebuilt.returncode == 0 and "rebuild documents: 1/1 events" in rebuilt.stderr
    assert clean.returncode == 0 and "no drift" in clean.stdout


def test_read_side_mistakes_get_a_one_line_error_and_no_traceback(env: dict[str, str]) -> None:
    missing = cli("query", "documents", "notes", "nope", env=env)
    unknown = cli("rebuild", "nonsense", env=env)
    bad_filter = cli("query", "documents", "notes", "--where", "oops", env=env)

    for done, message in [(missing, "no document"), (unknown, "no projection 'nonsense'"), (bad_filter, "field=value")]:
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def append_poison(env: dict[str, str], aggregate_id: str) -> None:
    """An event PostgreSQL's jsonb refuses (a NUL), written to the log past the command path, which refuses it."""
    settings = load_settings(pg_dsn=env["SYNC_PG_DSN"], namespace=env["SYNC_NAMESPACE"], kafka_bootstrap=None)
    backbone = bootstrap(settings)
    try:
        event = backbone.codec.new_event(aggregate_id, 1, DocumentCreated({"s": "\x00"}), EventMeta(event_id="poison"))
        backbone.log.append([event])
    finally:
        backbone.close()


def test_projection_dead_letters_are_listed_and_skipped(env: dict[str, str]) -> None:
    append_poison(env, "notes/bad")
    cli("query", "documents", "notes", env=env)
    listed = cli("projections", "dlq", "list", "--projection", "documents", "--json", env=env)
    skipped = cli("projections", "dlq", "skip", "--projection", "documents", "--aggregate", "notes/bad", env=env)
    after = cli("projections", "dlq", "list", "--projection", "documents", env=env)

    assert [json.loads(line)["aggregate_id"] for line in listed.stdout.splitlines()] == ["notes/bad"]
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert "no open dead letters" in after.stdout
