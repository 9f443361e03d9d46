"""Bounded restart on Kafka: a log starts each partition at its saved index checkpoint and reads only the tail."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence

import pytest
from support import default_connect

from syncbackbone.domain.errors import LogUnavailable
from syncbackbone.domain.records import EventMeta, NewEvent, Position, StoredEvent
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.postgres.index_store import PostgresIndexStore
from syncbackbone.infra.runtime.processes import Tansu

DOCS = [f"docs/d{i}" for i in range(12)]
OpenLog = Callable[..., KafkaEventLog]


@pytest.fixture
def open_log(tansu: Tansu, pg_dsn: str, namespace: str) -> Iterator[OpenLog]:
    opened: list[KafkaEventLog] = []

    def make(dsn: str = pg_dsn, every: int = 10_000) -> KafkaEventLog:
        store = PostgresIndexStore(dsn, namespace)
        opened.append(
            KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), 4, None, store, every, connect=default_connect())
        )
        return opened[-1]

    yield make
    for log in opened:
        log.close()


def event(aggregate_id: str, version: int, command_id: str | None = None) -> NewEvent:
    return NewEvent(aggregate_id, version, "DocumentPatched", b"{}", EventMeta(causation_id=command_id))


def grow(log: KafkaEventLog, rounds: int, start: int = 1) -> None:
    """``rounds`` more versions of every document, one append per round."""
    for version in range(start, start + rounds):
        log.append([event(doc, version, f"cmd-{doc}-{version}") for doc in DOCS])


def everything(log: KafkaEventLog) -> list[list[object]]:
    """What a reader sees: every partition, every aggregate, and a command of the first round."""
    partitions = [log.read_partition(p, 0, 100_000) for p in range(log.partitions)]
    histories = [log.read_aggregate(doc) for doc in DOCS]
    commands = [log.find_command(doc, f"cmd-{doc}-1") for doc in DOCS]
    return [*partitions, *histories, *commands, [log.end_offset(p) for p in range(log.partitions)]]


def test_a_restarted_log_reads_only_the_records_after_the_saved_checkpoint(open_log: OpenLog) -> None:
    writer = open_log()
    grow(writer, 30)
    assert writer.checkpoint() == 30 * len(DOCS)
    grow(writer, 2, start=31)

    restarted = open_log()
    restarted.claim(range(restarted.partitions))

    tail_records = 2 * len(DOCS) + 4  # the two last rounds, and at most one catch-up marker per partition
    assert restarted.records_read <= tail_records
    assert everything(restarted) == everything(writer)
    restarted.append([event(doc, 33) for doc in DOCS])  # versions below the checkpoint are known
    assert [len(restarted.read_aggregate(doc)) for doc in DOCS] == [33] * len(DOCS)


def test_a_saved_checkpoint_that_does_not_match_the_topic_is_dropped_and_the_partition_read_from_zero(
    tansu: Tansu, open_log: OpenLog, pg_dsn: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = open_log()
    grow(first, 5)
    assert first.checkpoint() == 5 * len(DOCS)
    recreated = KafkaEventLog(
        tansu.bootstrap, f"{namespace}r", AvroCodec(), connect=default_connect()
    )  # another topic, fewer events
    grow(recreated, 2)

    store = PostgresIndexStore(pg_dsn, namespace)  # the saved index of the first topic
    reader = KafkaEventLog(tansu.bootstrap, f"{namespace}r", AvroCodec(), 4, None, store, connect=default_connect())
    try:
        assert everything(reader) == everything(recreated)
        assert reader.records_read >= 2 * len(DOCS)
        assert "does not match the topic" in caplog.text
    finally:
        reader.close()
        recreated.close()


def test_a_log_whose_index_store_is_unreachable_reads_every_partition_from_offset_zero(open_log: OpenLog) -> None:
    writer = open_log(dsn="postgresql://127.0.0.1:1/nowhere?connect_timeout=1")
    grow(writer, 3)

    assert writer.checkpoint() == 0
    reader = open_log(dsn="postgresql://127.0.0.1:1/nowhere?connect_timeout=1")
    assert everything(reader) == everything(writer)
    assert reader.records_read >= 3 * len(DOCS)


def test_the_owner_saves_its_index_in_the_background_every_n_events(
    open_log: OpenLog, pg_dsn: str, namespace: str
) -> None:
    writer = open_log(every=20)
    grow(writer, 3)  # 36 events: one checkpoint is due
    store = PostgresIndexStore(pg_dsn, namespace)
    try:
        deadline = time.monotonic() + 10
        while not any(store.checkpoint(p) for p in range(writer.partitions)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(store.checkpoint(p) for p in range(writer.partitions))
    finally:
        store.close()


class FailsOnce(PostgresIndexStore):
    """The real index store, whose next version look-up fails as if PostgreSQL blinked."""

    fail_next = False

    def versions(self, aggregate_ids: Collection[str], below: int) -> dict[str, int]:
        if self.fail_next:
            self.fail_next = False
            raise LogUnavailable("PostgreSQL blinked (injected)")
        return super().versions(aggregate_ids, below)


class WritesWhileAsked(KafkaPythonClient):
    """A real client that runs ``meanwhile`` right after it was asked where the partitions end."""

    meanwhile: Callable[[], None] = staticmethod(lambda: None)

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        ends = super().end_offsets(topic, partitions)
        self.meanwhile()
        return ends


def test_a_reader_whose_catch_up_fails_on_postgresql_reads_the_same_records_again(
    tansu: Tansu, open_log: OpenLog, pg_dsn: str, namespace: str
) -> None:
    owner = open_log()
    grow(owner, 2)
    owner.checkpoint()
    store = FailsOnce(pg_dsn, namespace)
    reader = KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), 4, None, store, connect=default_connect())
    try:
        assert everything(reader) == everything(owner)  # started at the checkpoint
        owner.append([event("docs/new", 1), event("docs/new", 2)])
        store.fail_next = True
        with pytest.raises(LogUnavailable):
            reader.read_aggregate("docs/new")
        assert [s.version for s in reader.read_aggregate("docs/new")] == [1, 2]
    finally:
        reader.close()


def test_a_checkpoint_saved_while_a_reader_starts_is_used_and_never_deleted(
    tansu: Tansu, open_log: OpenLog, pg_dsn: str, namespace: str
) -> None:
    owner = open_log()
    grow(owner, 2)
    owner.checkpoint()
    client = WritesWhileAsked(tansu.bootstrap)
    reader = KafkaEventLog(
        tansu.bootstrap,
        namespace,
        AvroCodec(),
        4,
        client,
        PostgresIndexStore(pg_dsn, namespace),
        connect=default_connect(),
    )
    try:
        client.meanwhile = lambda: (grow(owner, 1, start=3), owner.checkpoint(), None)[-1]
        reader.read_aggregate(DOCS[0])  # starts its partition while the owner saves a newer checkpoint
        client.meanwhile = lambda: None
        grow(owner, 1, start=4)
        owner.checkpoint()

        fresh = open_log()
        assert everything(fresh) == everything(owner)
        assert [len(fresh.read_aggregate(doc)) for doc in DOCS] == [4] * len(DOCS)
    finally:
        reader.close()
        client.close()


def test_no_checkpoint_is_saved_past_an_event_the_log_holds_but_its_read_back_missed(
    open_log: OpenLog, pg_dsn: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    writer = open_log()
    grow(writer, 2)
    ghost = next(f"docs/ghost-{i}" for i in range(100) if writer.partition_for(f"docs/ghost-{i}") == 0)
    after_last = writer.read_partition(0, 0)[-1].position.offset + 1  # its commit marker: no event there
    # what a broker that shows a committed record only after a reader went past it leaves behind
    writer.record_appended([StoredEvent(event(ghost, 1), Position(0, after_last), 0)])

    saved = writer.checkpoint()

    store = PostgresIndexStore(pg_dsn, namespace)
    try:
        assert store.checkpoint(0) is None
        assert all(store.checkpoint(p) for p in range(1, writer.partitions))
        assert saved == sum(len(writer.read_partition(p, 0)) for p in range(1, writer.partitions))
        assert "missed 1 events this log holds (first: docs/ghost" in caplog.text
    finally:
        store.close()
