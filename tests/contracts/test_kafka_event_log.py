"""The event log contract on the Kafka log (Tansu), plus what only a Kafka log has to survive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from event_log_contract import EventLogContract, LogFactory, aggregates_in, event
from kafka import KafkaProducer

from syncbackbone.commands.ports import EventLog
from syncbackbone.infra.avro.codec import AvroCodec, encode_envelope, record_headers
from syncbackbone.infra.kafka.client import Connect
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.runtime.processes import Tansu


class TestKafkaEventLog(EventLogContract):
    concurrent_writers = 2
    """Not four: four writers fencing each other on every append drive Tansu 0.6's transaction coordinator
    into leaving the partition's last stable offset stuck for good (2 of 24 runs under CPU load); two writers
    never did in 124 runs. The fencing itself is the same with two."""
    broker_reruns = 2
    """Tansu 0.6 now and then lets a read_committed fetch go past a transaction being committed, and shows its
    records afterwards, below offsets the reader had passed (1 of 124 runs with two writers under CPU load;
    seen in CI with four). Such a round says nothing about the log: it runs again, with a warning."""

    @pytest.fixture
    def make_log(self, tansu: Tansu, namespace: str, connect: Connect) -> Iterator[LogFactory]:
        opened: list[EventLog] = []

        def make(partitions: int) -> EventLog:
            opened.append(KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), partitions, connect=connect))
            return opened[-1]

        yield make
        for log in opened:
            log.close()


@pytest.fixture
def kafka_log(tansu: Tansu, namespace: str, connect: Connect) -> Iterator[KafkaEventLog]:
    log = KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), connect=connect)
    yield log
    log.close()


def test_readers_ignore_an_aborted_duplicate_of_a_version_in_favour_of_the_first(
    tansu: Tansu, kafka_log: KafkaEventLog, connect: Connect
) -> None:
    (doc,) = aggregates_in(kafka_log, 0, 1)
    first = kafka_log.append([event(doc, 1, "cmd-1")])
    zombie = KafkaProducer(bootstrap_servers=tansu.bootstrap, transactional_id="zombie", enable_idempotence=True)
    zombie.init_transactions()
    zombie.begin_transaction()
    for duplicate in (event(doc, 1, "cmd-z"), event(doc, 3, "cmd-z")):  # a taken version, and a gap
        zombie.send(kafka_log.topics.events, encode_envelope(duplicate), doc.encode(), record_headers(duplicate), 0)
    zombie.flush()
    zombie.abort_transaction()  # Tansu still shows these records to read_committed readers
    zombie.close()

    reader = KafkaEventLog(tansu.bootstrap, kafka_log.namespace, AvroCodec(), connect=connect)
    try:
        assert reader.read_aggregate(doc) == first
        assert reader.find_command(doc, "cmd-z") == []
        assert [s.position for s in reader.read_partition(0, 0)] == [first[0].position]
        reader.append([event(doc, 2, "cmd-2")])
        assert [s.event.meta.causation_id for s in reader.read_aggregate(doc)] == ["cmd-1", "cmd-2"]
    finally:
        reader.close()


def test_a_fresh_reader_catches_up_to_every_event_despite_the_low_list_offsets_watermark(
    tansu: Tansu, kafka_log: KafkaEventLog, connect: Connect
) -> None:
    docs = [f"docs/bulk-{i}" for i in range(500)]
    for version in range(1, 21):
        kafka_log.append([event(doc, version) for doc in docs])

    reader = KafkaEventLog(tansu.bootstrap, kafka_log.namespace, AvroCodec(), connect=connect)
    try:
        seen = []
        for partition in range(reader.partitions):
            end = reader.end_offset(partition)
            events = reader.read_partition(partition, 0, limit=20_000)
            assert not events or events[-1].position.offset == end - 1
            seen.extend(events)
    finally:
        reader.close()
    assert len(seen) == 10_000
    assert {(s.aggregate_id, s.version) for s in seen} == {(d, v) for d in docs for v in range(1, 21)}


def test_an_existing_namespace_keeps_its_partition_count(
    tansu: Tansu, kafka_log: KafkaEventLog, connect: Connect
) -> None:
    other = KafkaEventLog(tansu.bootstrap, kafka_log.namespace, AvroCodec(), partitions=8, connect=connect)
    try:
        assert other.partitions == kafka_log.partitions == 4
    finally:
        other.close()
