"""The contract of the Kafka client seam (``infra/kafka/client.py``): admin, reader, group reader, transactional writer.

Subclass ``KafkaClientContract`` and provide two fixtures: ``broker``, the profile of the
broker the tests run on (``infra/kafka/brokers.py``), and ``client``, a client of that broker
made as ``bootstrap.kafka_connect`` makes it. The seam states Kafka's contract; where a test
depends on a departure a profile declares (aborted records shown, a fenced writer's commit that
hangs, ListOffsets low after a batched produce), it goes through the profile or asserts what the
profile says, so each profile's declarations are checked against the real broker too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from syncbackbone.domain.errors import WriterFenced
from syncbackbone.infra.kafka.brokers import BrokerProfile, is_marker
from syncbackbone.infra.kafka.client import GroupReader, GroupTimeouts, Incoming, KafkaClient, Outgoing, Reader

PARTITIONS = 2
GROUP = GroupTimeouts(session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_interval_ms=3000)
"""Short group timeouts: a join waits for the rebalance timeout on some brokers (Tansu)."""
COMMIT_S = 3.0


def records(topic: str, partition: int, *values: bytes, key: bytes | None = None) -> list[Outgoing]:
    return [Outgoing(topic, partition, v, key, (("n", v),)) for v in values]


def poll_until(reader: Reader, count: int, polls: int = 300) -> list[Incoming]:
    """Poll until ``count`` records other than markers came (or ``polls`` polls passed); all that came."""
    found: list[Incoming] = []
    for _ in range(polls):
        found += [r for r in reader.poll(0.1) if not is_marker(r)]
        if len(found) >= count:
            break
    return found


def values(found: list[Incoming]) -> list[bytes]:
    return [r.value for r in found]


class KafkaClientContract:
    """Behaviour every KafkaClient must show; subclasses provide ``broker`` and ``client``."""

    @pytest.fixture
    def broker(self) -> BrokerProfile:
        raise NotImplementedError("a subclass provides broker")

    @pytest.fixture
    def client(self) -> KafkaClient:
        raise NotImplementedError("a subclass provides client")

    @pytest.fixture
    def topic(self, client: KafkaClient) -> str:
        name = f"c{uuid.uuid4().hex[:10]}.contract"
        assert client.ensure_topics({name: {}}, PARTITIONS) == {name: PARTITIONS}
        return name

    @pytest.fixture
    def reader(self, client: KafkaClient, topic: str) -> Iterator[Reader]:
        made = client.reader()
        made.assign(topic, list(range(PARTITIONS)))
        for p in range(PARTITIONS):
            made.seek(p, 0)
        yield made
        made.close()

    def group_member(self, client: KafkaClient, topic: str, assigned: set[int], group: str) -> GroupReader:
        return client.group_reader(topic, group, assigned.update, assigned.difference_update, GROUP)

    # --- admin -------------------------------------------------------------------------------------------------

    def test_ensure_topics_creates_the_missing_ones_and_keeps_an_existing_ones_partition_count(
        self, client: KafkaClient, topic: str
    ) -> None:
        fresh = f"{topic}.fresh"
        assert client.ensure_topics({topic: {}, fresh: {"retention.ms": "-1"}}, 3) == {topic: PARTITIONS, fresh: 3}
        assert client.partition_count(fresh) == 3

    def test_a_topic_that_does_not_exist_has_no_partition_count(self, client: KafkaClient, topic: str) -> None:
        assert client.partition_count(f"{topic}.missing") is None

    def test_a_group_nobody_joined_has_no_members(self, client: KafkaClient) -> None:
        assert client.group_members(f"g{uuid.uuid4().hex[:10]}") == 0

    # --- produce and read --------------------------------------------------------------------------------------

    def test_produce_returns_each_records_offset_and_a_reader_returns_them_as_written(
        self, client: KafkaClient, topic: str, reader: Reader
    ) -> None:
        sent = [Outgoing(topic, 1, b"one", b"k1", (("h", b"1"),), 1_700_000_000_000), *records(topic, 0, b"a", b"b")]
        assert client.produce(sent) == [0, 0, 1]

        found = sorted(poll_until(reader, 3), key=lambda r: r.partition)  # each partition in the order returned
        assert [(r.partition, r.offset, r.value) for r in found] == [(0, 0, b"a"), (0, 1, b"b"), (1, 0, b"one")]
        assert (found[2].key, found[2].headers, found[2].timestamp_ms) == (b"k1", (("h", b"1"),), 1_700_000_000_000)

    def test_a_reader_never_moves_past_a_record_it_has_not_returned(
        self, client: KafkaClient, topic: str, reader: Reader
    ) -> None:
        client.produce(records(topic, 0, *(b"%d" % i for i in range(10))))
        returned: list[int] = []
        for _ in range(300):
            batch = reader.poll(0.1, max_records=1)
            assert len(batch) <= 1
            returned += [r.offset for r in batch]
            assert reader.position(0) == (returned[-1] + 1 if returned else 0)
            if len(returned) == 10:
                break
        assert returned == list(range(10))
        reader.seek(0, 4)
        assert reader.position(0) == 4 and [r.offset for r in poll_until(reader, 6)] == list(range(4, 10))

    def test_a_reader_waits_at_an_open_transaction_and_returns_it_once_committed(
        self, client: KafkaClient, broker: BrokerProfile, topic: str, reader: Reader
    ) -> None:
        writer = broker.writer(client, f"{topic}.w")
        writer.init()
        writer.begin()
        assert writer.send(records(topic, 0, b"t1", b"t2")) == [0, 1]
        client.produce(records(topic, 0, b"after"))  # past the open transaction: held back with it
        assert poll_until(reader, 1, polls=20) == []
        assert reader.position(0) == 0
        writer.commit(COMMIT_S)
        writer.close()
        assert values(poll_until(reader, 3)) == [b"t1", b"t2", b"after"]

    # --- the end of a partition --------------------------------------------------------------------------------

    def test_list_offsets_give_the_last_stable_offset_and_the_high_watermark_and_append_nothing(
        self, client: KafkaClient, broker: BrokerProfile, topic: str
    ) -> None:
        writer = broker.writer(client, f"{topic}.w")
        writer.init()
        writer.begin()
        last = writer.send(records(topic, 0, b"a", b"b", b"c"))[-1]
        writer.commit(COMMIT_S)
        writer.begin()
        (open_at,) = writer.send(records(topic, 0, b"open"))
        stable = [client.end_offsets(topic, [0, 1]) for _ in range(3)]
        assert [client.high_watermarks(topic, [0, 1]) for _ in range(3)] == [{0: open_at + 1, 1: 0}] * 3
        assert all(last < e[0] <= open_at and e[1] == 0 for e in stable) == broker.lists_stable_offsets
        writer.abort(COMMIT_S)
        writer.close()
        assert open_at < client.end_offsets(topic, [0])[0] == client.high_watermarks(topic, [0])[0]
        (plain,) = client.produce(records(topic, 1, b"plain"))
        assert plain == 0  # asking appended nothing

    def test_the_profile_reads_past_every_record_committed_before_the_end_was_asked_for(
        self, client: KafkaClient, broker: BrokerProfile, topic: str, reader: Reader
    ) -> None:
        client.produce(records(topic, 0, *(b"%d" % i for i in range(50))))  # one batch: ListOffsets low on Tansu
        found = list(broker.read_to_end(client, reader, topic, broker.end_offsets(client, topic, [0, 1])))
        assert [r.value for r in found if not is_marker(r)] == [b"%d" % i for i in range(50)]

    # --- transactions ------------------------------------------------------------------------------------------

    def test_a_committed_transaction_shows_what_was_sent_and_sent_later(
        self, client: KafkaClient, broker: BrokerProfile, topic: str, reader: Reader
    ) -> None:
        writer = broker.writer(client, f"{topic}.w")
        writer.init()
        writer.begin()
        writer.send(records(topic, 0, b"now"))
        writer.send_later(records(topic, 1, b"later"))
        writer.commit(COMMIT_S)
        writer.close()
        assert sorted(values(poll_until(reader, 2))) == [b"later", b"now"]

    def test_aborted_records_are_hidden_unless_the_profile_says_the_broker_shows_them(
        self, client: KafkaClient, broker: BrokerProfile, topic: str, reader: Reader
    ) -> None:
        writer = broker.writer(client, f"{topic}.w")
        writer.init()
        writer.begin()
        writer.send(records(topic, 0, b"aborted"))
        writer.abort(COMMIT_S)
        writer.begin()
        writer.send(records(topic, 0, b"committed"))
        writer.commit(COMMIT_S)
        writer.close()
        shown = values(poll_until(reader, 2 if broker.shows_aborted_records else 1))
        assert shown == ([b"aborted", b"committed"] if broker.shows_aborted_records else [b"committed"])

    def test_a_writer_that_takes_over_the_id_fences_the_old_one(
        self, client: KafkaClient, broker: BrokerProfile, topic: str, reader: Reader
    ) -> None:
        old = broker.writer(client, f"{topic}.w")
        old.init()
        old.begin()
        old.send(records(topic, 0, b"stale"))
        new = broker.writer(client, f"{topic}.w")
        new.init()
        with pytest.raises(WriterFenced):
            old.commit(COMMIT_S)
        old.close()
        new.begin()
        new.send(records(topic, 1, b"fresh"))
        new.commit(COMMIT_S)
        new.close()
        shown = values(poll_until(reader, 2 if broker.shows_aborted_records else 1))  # "stale" was aborted
        assert b"fresh" in shown and (b"stale" in shown) == broker.shows_aborted_records

    # --- consumer groups ---------------------------------------------------------------------------------------

    def test_a_group_member_gets_every_partition_commits_offsets_and_pauses(
        self, client: KafkaClient, topic: str
    ) -> None:
        client.produce(records(topic, 0, b"a0", b"a1") + records(topic, 1, b"b0"))
        group, assigned = f"{topic}.g", set[int]()
        member = self.group_member(client, topic, assigned, group)
        try:
            assert sorted(values(poll_until(member, 3))) == [b"a0", b"a1", b"b0"]
            assert assigned == set(range(PARTITIONS)) and client.group_members(group) == 1
            member.commit({0: 1})
            assert (member.committed(0), member.committed(1)) == (1, None)
            member.pause([0])
            member.seek(0, 1)
            client.produce(records(topic, 1, b"b1"))
            assert values(poll_until(member, 2, polls=30)) == [b"b1"]
            member.resume([0])
            assert values(poll_until(member, 1)) == [b"a1"]
        finally:
            member.close()

    def test_offsets_sent_in_a_transaction_are_committed_with_it(
        self, client: KafkaClient, broker: BrokerProfile, topic: str
    ) -> None:
        client.produce(records(topic, 0, b"in"))
        group, assigned = f"{topic}.g", set[int]()
        member = self.group_member(client, topic, assigned, group)
        writer = broker.writer(client, f"{topic}.w")
        try:
            assert values(poll_until(member, 1)) == [b"in"]
            writer.init()
            writer.begin()
            writer.send(records(topic, 1, b"out"))
            writer.send_offsets(member, topic, {0: 1}, COMMIT_S)
            assert member.committed(0) is None
            writer.commit(COMMIT_S)
            assert member.committed(0) == 1
        finally:
            writer.close()
            member.close()
