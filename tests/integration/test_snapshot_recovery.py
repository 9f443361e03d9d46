"""Snapshots on real PostgreSQL: the store, bounded recovery, the APScheduler jobs, and bad rows."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

import psycopg
import pytest
from support import DelegatingLog

from syncbackbone.commands.models import PatchDocument, PutDocument
from syncbackbone.commands.ports import EventLog
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.commands.snapshots import SnapshotPolicy, Snapshots
from syncbackbone.domain.documents import Document, DocumentCreated, DocumentEvent, DocumentPatched
from syncbackbone.domain.records import EventMeta, Position, StoredEvent
from syncbackbone.domain.snapshots import SnapshotPoint
from syncbackbone.infra.bootstrap import Backbone, bootstrap, running
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.runtime.processes import Tansu
from syncbackbone.infra.settings import load_settings

K = 100


class CountingLog(DelegatingLog):
    """The real log, counting the events that aggregate reads return."""

    def __init__(self, inner: EventLog) -> None:
        super().__init__(inner)
        self.read = 0

    def read_aggregate(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        found = self.inner.read_aggregate(aggregate_id, from_version, to_version)
        self.read += len(found)
        return found

    def read_aggregates_from(self, from_versions: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
        found = self.inner.read_aggregates_from(from_versions)
        self.read += sum(len(v) for v in found.values())
        return found


def make_backbone(pg_dsn: str, namespace: str, kafka: str | None = None, **overrides: object) -> Backbone:
    options: dict[str, object] = {"snapshot_every": K, "snapshot_interval_s": 0, "partitions": 2, **overrides}
    return bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, **options))


@pytest.fixture
def backbone(pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    bb = make_backbone(pg_dsn, namespace, snapshot_every=5)
    yield bb
    bb.close()


@pytest.fixture(params=["embedded", "kafka"])
def any_backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    bb = make_backbone(pg_dsn, namespace, kafka)
    yield bb
    bb.close()


def write(backbone: Backbone, agg: str, count: int) -> None:
    """Append ``count`` events to ``agg`` straight to the log (a created document, then patches)."""
    version = len(backbone.log.read_aggregate(agg))
    for start in range(0, count, 5000):
        batch = []
        for i in range(start, min(start + 5000, count)):
            version += 1
            event: DocumentEvent = DocumentCreated({"i": i}) if version == 1 else DocumentPatched({"i": i})
            batch.append(backbone.codec.new_event(agg, version, event, EventMeta()))
        backbone.log.append(batch)


def snapshot_version(backbone: Backbone, agg: str) -> int:
    found = backbone.snapshot_store().load([agg]).found.get(agg)
    return found.version if found else 0


def test_a_snapshot_is_kept_with_its_version_and_log_position_and_an_older_one_never_replaces_it(
    backbone: Backbone,
) -> None:
    store = backbone.snapshot_store()
    newer = SnapshotPoint(Document("c", "a", 7, {"x": [1, "ü"]}), Position(1, 40))
    older = SnapshotPoint(Document("c", "a", 3, {"x": 0}), Position(1, 12))
    assert store.save([newer]) == 1
    assert store.save([older]) == 0
    found = store.load(["c/a", "c/none"])
    assert found.found["c/a"].document == newer.document
    assert found.found["c/a"].position == Position(1, 40)
    assert "c/none" not in found.found and not found.unusable


@pytest.mark.kafka
def test_loading_an_aggregate_of_50k_events_reads_at_most_k_events_with_a_snapshot(any_backbone: Backbone) -> None:
    bb, agg = any_backbone, "big/one"
    write(bb, agg, 50_000 - K // 2)
    assert bb.snapshots().take([agg]) == 1  # what the processor's job does K events after the last
    write(bb, agg, K // 2 - 1)
    without, counted = CountingLog(bb.log), CountingLog(bb.log)
    assert Snapshots(without, bb.codec, None).load([agg])[agg].document.version == 50_000 - 1
    assert without.read == 50_000 - 1
    snapshots = Snapshots(counted, bb.codec, bb.snapshot_store(), SnapshotPolicy(K))
    with running(CommandProcessor(counted, bb.stream(), bb.codec, snapshots=snapshots)) as processor:
        result = bb.submit(PatchDocument(collection="big", id="one", data={"last": True}, expected_version=49_999))
        assert (result.status, result.version) == ("accepted", 50_000)
        assert processor.cached(agg) == bb.document(agg)
    assert 0 < counted.read <= K


@pytest.mark.kafka
def test_a_restarted_kafka_processor_reads_the_records_after_the_index_checkpoint_not_the_history(
    tansu: Tansu, pg_dsn: str, namespace: str
) -> None:
    first, agg = make_backbone(pg_dsn, namespace, tansu.bootstrap), "big/one"
    write(first, agg, 20_000)
    first.snapshots().take([agg])
    first.log.checkpoint()  # what the log does every SYNC_INDEX_CHECKPOINT_EVERY events
    write(first, agg, K // 2)
    first.close()  # an orderly stop saves the index too; a crash would leave these K/2 to read again

    restarted = make_backbone(pg_dsn, namespace, tansu.bootstrap)
    try:
        assert isinstance(restarted.log, KafkaEventLog)
        with running(restarted.processor()):
            result = restarted.submit(PatchDocument(collection="big", id="one", data={"n": 1}, expected_version=20_050))
            assert (result.status, result.version) == ("accepted", 20_051)
        assert restarted.log.records_read < 20, "the restart read the partition, not the tail after the checkpoint"
        folded = restarted.document(agg)  # all 20,051 events: below the checkpoint, fetched by offset
        assert folded.version == 20_051 and folded.data["n"] == 1
        assert restarted.snapshots().load([agg])[agg].document == folded
    finally:
        restarted.close()


def test_the_processor_schedules_a_snapshot_once_an_aggregate_is_k_events_past_its_last(backbone: Backbone) -> None:
    with backbone.running_processor():
        for i in range(12):
            assert backbone.submit(PutDocument(collection="k", id="a", data={"i": i})).status == "accepted"
        assert backbone.schedulers[0].idle()
    assert 10 <= snapshot_version(backbone, "k/a") <= 12
    assert snapshot_version(backbone, "k/b") == 0


def test_the_periodic_job_snapshots_every_aggregate_changed_since_its_last_snapshot(
    pg_dsn: str, namespace: str
) -> None:
    bb = make_backbone(pg_dsn, namespace, snapshot_interval_s=0.2)
    try:
        with bb.running_processor():
            bb.submit_many([PutDocument(collection="p", id=doc, data={}) for doc in ("a", "b")])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (snapshot_version(bb, "p/a") and snapshot_version(bb, "p/b")):
                time.sleep(0.1)
        assert (snapshot_version(bb, "p/a"), snapshot_version(bb, "p/b")) == (1, 1)
    finally:
        bb.close()


def test_a_corrupted_snapshot_row_is_reported_ignored_and_replaced_while_the_processor_keeps_deciding(
    backbone: Backbone, pg_dsn: str, namespace: str
) -> None:
    with backbone.running_processor():
        for i in range(6):
            backbone.submit(PutDocument(collection="c", id="a", data={"i": i}))
        assert backbone.schedulers[0].idle()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'UPDATE "{namespace}".snapshots SET state = %s, version = 99', [b"\x00garbage"])
    lookup = backbone.snapshot_store().load(["c/a"])
    assert "c/a" not in lookup.found
    assert "snapshot of c/a (v99" in lookup.unusable["c/a"] and "cannot be decoded" in lookup.unusable["c/a"]
    with backbone.running_processor():
        result = backbone.submit(PatchDocument(collection="c", id="a", data={"more": 1}, expected_version=6))
        assert (result.status, result.version) == ("accepted", 7)
        assert backbone.schedulers[-1].idle()
    assert snapshot_version(backbone, "c/a") == 7  # the processor's job replaced the unusable row


def test_a_snapshot_that_does_not_match_the_log_is_ignored_and_the_aggregate_rebuilt(backbone: Backbone) -> None:
    write(backbone, "m/a", 4)
    elsewhere = Position(backbone.log.partition_for("m/a"), 10_000)
    backbone.snapshot_store().save([SnapshotPoint(Document("m", "a", 3, {"wrong": True}), elsewhere)])
    loaded = backbone.snapshots().load(["m/a"])["m/a"]
    assert loaded.document == backbone.document("m/a")
    assert loaded.snapshot_version == 0 and loaded.problem and "does not match the log" in loaded.problem


def test_a_failing_snapshot_store_never_stops_the_processor(backbone: Backbone, pg_dsn: str, namespace: str) -> None:
    backbone.snapshot_store()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{namespace}".snapshots')
    with backbone.running_processor():
        results = [backbone.submit(PutDocument(collection="f", id="a", data={"i": i})) for i in range(7)]
        assert backbone.schedulers[0].idle()
    assert [r.version for r in results] == list(range(1, 8))
