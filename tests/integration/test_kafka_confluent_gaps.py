"""The confluent reader at a fetch hole (``infra/kafka/confluent/gaps.py``), on the tests' broker.

Tansu leaves such holes only now and then, under concurrent commits. Here the librdkafka consumer
under a real reader is moved past records itself, which is what the reader sees when the broker
leaves them out of a fetch: records after offsets it has not returned.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from syncbackbone.infra.kafka.client import Incoming, Outgoing
from syncbackbone.infra.kafka.confluent.client import FETCH, READ, ConfluentClient
from syncbackbone.infra.kafka.confluent.gaps import GapProbe, Gaps
from syncbackbone.infra.kafka.confluent.reader import ConfluentReader
from syncbackbone.infra.runtime.processes import Tansu

HOLES = "syncbackbone.infra.kafka"


@pytest.fixture
def client(tansu: Tansu) -> Iterator[ConfluentClient]:
    made = ConfluentClient(tansu.bootstrap, hole_patience_s=20.0)
    yield made
    made.close()


@pytest.fixture
def topic(client: ConfluentClient) -> str:
    name = f"g{uuid.uuid4().hex[:10]}.gaps"
    client.ensure_topics({name: {}}, 1)
    return name


def consumer(client: ConfluentClient, **config: object) -> Consumer:
    return Consumer({**client.connection, **READ, **FETCH, "group.id": f"r{uuid.uuid4().hex}", **config})


def reader_of(client: ConfluentClient, topic: str, patience_s: float) -> tuple[ConfluentReader, Consumer]:
    """A reader of ``topic``'s partition 0 from offset 0, and the librdkafka consumer under it."""
    under = consumer(client, **{"fetch.wait.max.ms": 20})
    probe = GapProbe(lambda: consumer(client, **{"isolation.level": "read_uncommitted", "fetch.wait.max.ms": 1}))
    reader = ConfluentReader(under, Gaps(probe, patience_s), rest_at_end=True)
    reader.assign(topic, [0])
    reader.seek(0, 0)
    return reader, under


def read_all(reader: ConfluentReader, end: int) -> list[Incoming]:
    found: list[Incoming] = []
    for _ in range(300):
        found += reader.poll(0.1)
        if reader.position(0) >= end:
            break
    return found


def test_a_reader_fetches_again_from_records_the_broker_left_out(client: ConfluentClient, topic: str) -> None:
    client.produce([Outgoing(topic, 0, b"%d" % i) for i in range(10)])
    reader, under = reader_of(client, topic, patience_s=20.0)
    try:
        first: list[Incoming] = []
        while not first:
            first = reader.poll(0.1, max_records=2)
        assert [r.offset for r in first] == [0, 1]
        under.seek(TopicPartition(topic, 0, 6))  # the next fetch answers from 6: offsets 2-5 left out
        rest = read_all(reader, 10)
        assert [r.offset for r in first + rest] == list(range(10))
        assert reader.position(0) == 10
    finally:
        reader.close()


def test_a_hole_still_there_after_the_patience_is_read_past_with_a_warning(
    client: ConfluentClient, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    client.produce([Outgoing(topic, 0, b"%d" % i) for i in range(10)])
    reader, under = reader_of(client, topic, patience_s=0.0)
    try:
        first: list[Incoming] = []
        while not first:
            first = reader.poll(0.1, max_records=2)
        under.seek(TopicPartition(topic, 0, 6))
        with caplog.at_level(logging.WARNING, logger=HOLES):
            rest = read_all(reader, 10)
        assert [r.offset for r in first + rest] == [0, 1, 6, 7, 8, 9]
        assert "offsets 2 to 5 never came" in caplog.text
    finally:
        reader.close()


def test_transaction_markers_are_passed_without_fetching_again(
    client: ConfluentClient, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    writer = client.writer(f"{topic}.w")
    writer.init()
    for n in range(5):
        writer.begin()
        writer.send([Outgoing(topic, 0, b"%d" % n)])
        writer.commit(5.0)
    writer.close()
    end = client.end_offsets(topic, [0])[0]
    reader, _ = reader_of(client, topic, patience_s=20.0)
    try:
        with caplog.at_level(logging.DEBUG, logger=HOLES):
            found = read_all(reader, end)
        assert [r.value for r in found] == [b"0", b"1", b"2", b"3", b"4"]
        assert [r.offset for r in found] == [0, 2, 4, 6, 8] and reader.position(0) == end == 10
        assert "fetched again" not in caplog.text
    finally:
        reader.close()
