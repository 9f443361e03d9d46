"""What the broker profiles append to a topic while reading it (``infra/kafka/brokers.py``), on Tansu.

Nothing is timed: a topic's high watermark moves with every record appended (each batch starts past
the last), so an unchanged high watermark proves a reader appended nothing, and the records read back
from offset 0 count the catch-up markers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial

import pytest

from syncbackbone.domain.records import EventMeta, NewEvent
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.kafka.brokers import (
    BrokerProfile,
    Connector,
    KafkaProfile,
    TansuProfile,
    append_end_markers,
    is_marker,
)
from syncbackbone.infra.kafka.bus import KafkaCommandBus
from syncbackbone.infra.kafka.client import Connect, KafkaClient, Outgoing, Reader, read_until
from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.runtime.processes import Tansu

ROUNDS = 20


def connector(broker: BrokerProfile) -> Connect:
    return Connector(partial(KafkaPythonClient, hole_patience_s=broker.hole_patience_s), broker)


@pytest.fixture
def client(tansu: Tansu) -> Iterator[KafkaClient]:
    made = KafkaPythonClient(tansu.bootstrap)
    yield made
    made.close()


@pytest.fixture
def written(tansu: Tansu, namespace: str, connect: Connect) -> Iterator[KafkaEventLog]:
    """A log in ``namespace`` whose owner appended three events to each of a few documents."""
    log = KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), connect=connect)
    for doc in (f"docs/d{i}" for i in range(8)):
        log.append(
            [NewEvent(doc, v, "DocumentPatched", b"{}", EventMeta(causation_id=f"cmd-{doc}-{v}")) for v in (1, 2, 3)]
        )
    yield log
    log.close()


def read_everything(log: KafkaEventLog, bus: KafkaCommandBus) -> None:
    """What the read paths ask of a log and a bus, ROUNDS times (reading on at the end of each partition once:
    that waits on a fetch for a while)."""
    docs = [e.aggregate_id for p in range(log.partitions) for e in log.read_partition(p, 0)]
    assert [log.read_partition(p, log.end_offset(p)) for p in range(log.partitions)] == [[]] * log.partitions
    for _ in range(ROUNDS):
        assert [log.end_offset(p) for p in range(log.partitions)]
        assert [len(log.read_aggregate(doc)) for doc in docs] == [3] * len(docs)
        assert log.find_command(docs[0], f"cmd-{docs[0]}-1")
        assert bus.dead_letters() == []


@pytest.mark.parametrize("broker", [KafkaProfile(), TansuProfile(min_interval_s=0)], ids=["kafka", "tansu"])
def test_a_reader_of_the_backbones_topics_appends_nothing(
    tansu: Tansu, client: KafkaClient, written: KafkaEventLog, broker: BrokerProfile
) -> None:
    """Under kafka no read path ever appends; under tansu, with no marker interval at all, neither does one after
    the backbone's own writes (transactions end with a one-record marker, where the high watermark is exact)."""
    topics = (written.topics.events, written.topics.dlq, written.topics.results)
    before = {t: client.high_watermarks(t, range(written.partitions)) for t in topics}
    connect = connector(broker)
    reader = KafkaEventLog(tansu.bootstrap, written.namespace, AvroCodec(), connect=connect)
    bus = KafkaCommandBus(tansu.bootstrap, written.namespace, AvroCodec(), connect=connect)
    try:
        read_everything(reader, bus)
    finally:
        bus.close()
        reader.close()
    assert {t: client.high_watermarks(t, range(written.partitions)) for t in topics} == before


@pytest.fixture
def plain(client: KafkaClient) -> str:
    """A topic of two partitions for plain (non-transactional) writes."""
    name = f"p{uuid.uuid4().hex[:10]}.plain"
    client.ensure_topics({name: {}}, 2)
    return name


def write_plain(client: KafkaClient, topic: str, count: int) -> None:
    """``count`` records to each partition in one produce (one batch each: the high watermark is low after it)."""
    client.produce([Outgoing(topic, p, b"%d" % i) for p in (0, 1) for i in range(count)])


def read_to_end(client: KafkaClient, broker: BrokerProfile, reader: Reader, topic: str) -> list[bytes]:
    ends = broker.end_offsets(client, topic, [0, 1])
    return [r.value for r in broker.read_to_end(client, reader, topic, ends) if not is_marker(r)]


def markers_in(client: KafkaClient, topic: str) -> dict[int, int]:
    """Per partition, the catch-up markers in ``topic`` (read to a last marker of this call's own, not counted)."""
    reader = client.reader()
    try:
        reader.assign(topic, [0, 1])
        for p in (0, 1):
            reader.seek(p, 0)
        found = [r.partition for r in read_until(reader, append_end_markers(client, topic, [0, 1])) if is_marker(r)]
    finally:
        reader.close()
    return {p: found.count(p) - 1 for p in (0, 1)}


@pytest.fixture
def reader(client: KafkaClient, plain: str) -> Iterator[Reader]:
    made = client.reader()
    made.assign(plain, [0, 1])
    for p in (0, 1):
        made.seek(p, 0)
    yield made
    made.close()


def test_under_tansu_a_reader_marks_a_plain_batch_at_most_once_per_partition_per_interval(
    client: KafkaClient, plain: str, reader: Reader
) -> None:
    broker = TansuProfile(min_interval_s=3600)
    write_plain(client, plain, 10)
    assert sorted(read_to_end(client, broker, reader, plain)) == sorted([b"%d" % i for i in range(10)] * 2)
    for _ in range(3):  # more plain writes within the interval: the high watermark stands, no marker
        write_plain(client, plain, 5)
        read_to_end(client, broker, reader, plain)
    for _ in range(ROUNDS):  # idle
        read_to_end(client, broker, reader, plain)
    assert markers_in(client, plain) == {0: 1, 1: 1}


def test_under_tansu_an_idle_reader_appends_no_marker_even_without_an_interval(
    client: KafkaClient, plain: str, reader: Reader
) -> None:
    broker = TansuProfile(min_interval_s=0)
    for _ in range(3):
        write_plain(client, plain, 10)
        read_to_end(client, broker, reader, plain)  # one marker per partition after each plain write
    for _ in range(ROUNDS):  # idle: the last batch is a marker, so the high watermark is exact
        assert read_to_end(client, broker, reader, plain) == []
    assert markers_in(client, plain) == {0: 3, 1: 3}


def test_under_tansu_another_processs_marker_is_no_reason_for_one_of_ones_own(
    client: KafkaClient, plain: str, reader: Reader
) -> None:
    write_plain(client, plain, 10)
    read_to_end(client, TansuProfile(min_interval_s=0), reader, plain)  # one process marks the plain batch
    other = client.reader()
    try:
        other.assign(plain, [0, 1])
        for p in (0, 1):
            other.seek(p, 0)
        for _ in range(ROUNDS):  # another process, reading from 0, finds the end at that marker
            read_to_end(client, TansuProfile(min_interval_s=0), other, plain)
    finally:
        other.close()
    assert markers_in(client, plain) == {0: 1, 1: 1}
