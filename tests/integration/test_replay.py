"""The replay service on real PostgreSQL (and Tansu): time travel, the audit trail, rebuilds, bad input."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from syncbackbone.commands.models import CreateDocument, DeleteDocument, PatchDocument, PutDocument
from syncbackbone.domain.documents import Document, DocumentCreated
from syncbackbone.domain.records import EventMeta
from syncbackbone.domain.snapshots import SnapshotPoint
from syncbackbone.infra.app.audit_export import export
from syncbackbone.infra.app.replay import ReplayService
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings
from syncbackbone.projections.errors import NotFound


class Silent:
    """A progress sink that shows nothing."""

    def advance(self, n: int = 1) -> None: ...

    def done(self) -> None: ...


def quiet(label: str, total: int) -> Silent:
    return Silent()


@pytest.fixture(params=["embedded", "kafka"])
def backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    settings = load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, partitions=2)
    bb = bootstrap(settings)
    yield bb
    bb.close()


def history_of_a_note(backbone: Backbone) -> datetime:
    """notes/n1: created, patched, then (after the returned time) replaced and deleted."""
    with backbone.running_processor():
        backbone.submit(CreateDocument(collection="notes", id="n1", data={"title": "a"}, actor="ann"))
        backbone.submit(PatchDocument(collection="notes", id="n1", data={"done": True}, actor="bob"))
        time.sleep(0.05)
        between = datetime.now(UTC)
        time.sleep(0.05)
        backbone.submit(PutDocument(collection="notes", id="n1", data={"title": "b"}, command_id="put-1"))
        backbone.submit(DeleteDocument(collection="notes", id="n1"))
    return between


@pytest.mark.kafka
def test_a_replay_shows_the_history_and_the_state_at_an_earlier_version_or_time(backbone: Backbone) -> None:
    between = history_of_a_note(backbone)
    service = ReplayService.of(backbone)
    now = service.replay("notes/n1")
    assert (now.state.version, now.state.deleted, now.problems) == (4, True, [])
    assert [h.stored.event.type for h in now.history] == [
        "DocumentCreated",
        "DocumentPatched",
        "DocumentReplaced",
        "DocumentDeleted",
    ]
    first = now.history[0].as_dict()
    assert (first["actor"], first["change"], first["version"]) == ("ann", {"data": {"title": "a"}}, 1)
    assert now.history[2].as_dict()["command_id"] == "put-1"
    at_two = service.replay("notes/n1", to_version=2)
    assert at_two.state == Document("notes", "n1", 2, {"title": "a", "done": True})
    assert service.replay("notes/n1", as_of=between).state == at_two.state
    assert json.loads(json.dumps(at_two.as_dict()))["state"]["data"] == {"title": "a", "done": True}


def test_an_unknown_aggregate_and_a_time_before_the_first_event_are_named(backbone: Backbone) -> None:
    history_of_a_note(backbone)
    service = ReplayService.of(backbone)
    with pytest.raises(NotFound, match="no events for aggregate 'notes/ghost'"):
        service.replay("notes/ghost")
    with pytest.raises(NotFound, match=r"notes/n1 did not exist yet at .*its first event \(v1\) was recorded at"):
        service.replay("notes/n1", as_of=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(Exception, match="has 4 versions; there is no version 9"):
        service.replay("notes/n1", to_version=9)


def test_an_event_whose_schema_is_missing_is_reported_and_the_rest_of_the_replay_goes_on(backbone: Backbone) -> None:
    history_of_a_note(backbone)
    fifth = backbone.codec.new_event("notes/n1", 5, DocumentCreated({"again": True}), EventMeta(actor="eve"))
    backbone.log.append([replace(fifth, meta=replace(fifth.meta, schema_version=7))])
    backbone.log.append([backbone.codec.new_event("notes/n1", 6, DocumentCreated({"again": True}), EventMeta())])
    replayed = ReplayService.of(backbone).replay("notes/n1")
    assert replayed.state.version == 6 and replayed.state.data == {"again": True}
    assert len(replayed.problems) == 1
    assert "notes/n1 v5 (DocumentCreated)" in replayed.problems[0]
    assert "no schema syncbackbone.DocumentCreated v7" in replayed.problems[0]
    assert replayed.history[4].error and replayed.history[5].error is None


def test_a_corrupted_snapshot_row_is_named_and_the_replay_uses_the_events(
    backbone: Backbone, pg_dsn: str, namespace: str
) -> None:
    history_of_a_note(backbone)
    assert backbone.snapshots().take(["notes/n1"]) == 1
    assert ReplayService.of(backbone).replay("notes/n1").snapshot == "v4 matches the replay"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{namespace}".snapshots SET state = %s', [b'{"not": "a snapshot"}'])
    replayed = ReplayService.of(backbone).replay("notes/n1")
    assert replayed.state.version == 4 and replayed.snapshot == "unusable"
    assert "snapshot of notes/n1 (v4" in replayed.problems[0] and "replayed from events" in replayed.problems[0]


def test_a_snapshot_that_drifted_from_the_log_is_reported_by_replay_and_verify(backbone: Backbone) -> None:
    history_of_a_note(backbone)
    service = ReplayService.of(backbone)
    tip = backbone.log.read_aggregate("notes/n1", 4)[0].position
    wrong = SnapshotPoint(Document("notes", "n1", 4, {"forged": True}), tip)
    backbone.snapshot_store().save([wrong], overwrite=["notes/n1"])
    assert service.replay("notes/n1").snapshot == "v4 differs from the replay"
    assert service.verify_snapshots(["notes/n1"]) == ["notes/n1: from snapshot v4 != from events v4"]


def test_the_audit_export_writes_jsonl_and_csv_filtered_by_time_and_aggregate(
    backbone: Backbone, tmp_path: Path
) -> None:
    between = history_of_a_note(backbone)
    with backbone.running_processor():
        backbone.submit(PutDocument(collection="other", id="o1", data={"x": 1}, actor="zed"))
    service = ReplayService.of(backbone)
    everything = tmp_path / "all.jsonl"
    assert export(service.events(progress=quiet), everything).rows == 5
    rows = [json.loads(line) for line in everything.read_text().splitlines()]
    assert {r["aggregate_id"] for r in rows} == {"notes/n1", "other/o1"}
    later = tmp_path / "later.csv"
    assert export(service.events(since=between, aggregate_id="notes/n1", progress=quiet), later, "csv").rows == 2
    with later.open() as f:
        table = list(csv.DictReader(f))
    assert [(r["version"], r["type"], r["command_id"]) for r in table][0] == ("3", "DocumentReplaced", "put-1")
    assert json.loads(table[0]["change"]) == {"data": {"title": "b"}}
    assert export(service.events(until_=between, progress=quiet), tmp_path / "early.jsonl").rows == 2


def test_a_replay_of_everything_feeds_the_projections_rebuild(backbone: Backbone) -> None:
    history_of_a_note(backbone)
    assert ReplayService.of(backbone).rebuild("documents", quiet) == 4


def test_replay_state_from_snapshots_equals_replay_from_zero(backbone: Backbone) -> None:
    with backbone.running_processor():
        for i in range(7):
            backbone.submit(PutDocument(collection="s", id="a", data={"i": i}))
    service = ReplayService.of(backbone)
    backbone.snapshots().take(["s/a"])
    with backbone.running_processor():
        backbone.submit(PatchDocument(collection="s", id="a", data={"j": 1}))
    loaded = backbone.snapshots().load(["s/a"])["s/a"]
    assert loaded.snapshot_version == 7 and loaded.read == 2
    assert service.state("s/a", from_snapshots=True) == service.state("s/a") == loaded.document
