"""The bus contract on the Kafka bus (Tansu), plus what only it promises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bus_contract import PARTITIONS, BusContract, StreamFactory, create, poll_until

from syncbackbone.commands.ports import CommandBus, CommandStream, PartitionOutcome
from syncbackbone.domain.errors import WriterFenced
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.kafka.bus import KafkaCommandBus
from syncbackbone.infra.kafka.client import Connect
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.kafka.stream import KafkaCommandStream
from syncbackbone.infra.runtime.processes import Tansu

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
"""Tansu makes a join wait about half the session timeout: short sessions keep the tests quick."""


class TestKafkaBus(BusContract):
    @pytest.fixture
    def bus(self, tansu: Tansu, namespace: str, codec: AvroCodec, connect: Connect) -> Iterator[CommandBus]:
        bus = KafkaCommandBus(tansu.bootstrap, namespace, codec, PARTITIONS, connect=connect)
        yield bus
        bus.close()

    @pytest.fixture
    def make_stream(self, tansu: Tansu, namespace: str, codec: AvroCodec, connect: Connect) -> Iterator[StreamFactory]:
        opened: list[tuple[KafkaEventLog, CommandStream]] = []

        def make(group: str | None = None) -> CommandStream:
            log = KafkaEventLog(tansu.bootstrap, namespace, codec, PARTITIONS, connect=connect)
            stream = KafkaCommandStream(tansu.bootstrap, namespace, log, codec, group, **FAST_GROUP, connect=connect)
            opened.append((log, stream))
            return opened[-1][1]

        yield make
        for log, stream in opened:
            stream.close()
            log.close()

    def test_a_second_stream_fences_the_first(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec, namespace: str
    ) -> None:
        """The contract's test, but the second stream joins a group of its own. Tansu never gives a group a
        new leader once its leader stalls while a newcomer joins (the group then stays without assignments),
        so here the takeover of the stalled first stream's partitions is by claim alone."""
        command = create("a")
        bus.send([command])
        first = make_stream()
        (record,) = poll_until(first, 1)
        second = make_stream(f"{namespace}.takeover")  # type: ignore[call-arg]
        poll_until(second, 1)

        with pytest.raises(WriterFenced):
            first.commit(PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)]))
        published = second.commit(
            PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)])
        )

        assert bus.wait_results([command.command_id], timeout_s=10) == {command.command_id: published[0]}

    def test_commit_appends_the_accepted_events_to_the_log(
        self,
        bus: CommandBus,
        make_stream: StreamFactory,
        codec: AvroCodec,
        tansu: Tansu,
        namespace: str,
        connect: Connect,
    ) -> None:
        command = create("a")
        bus.send([command])
        stream = make_stream()
        (record,) = poll_until(stream, 1)

        (result,) = stream.commit(
            PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)])
        )

        log = KafkaEventLog(tansu.bootstrap, namespace, codec, PARTITIONS, connect=connect)
        try:
            (stored,) = log.find_command(command.aggregate_id, command.command_id)
        finally:
            log.close()
        assert result.positions == (stored.position,)

    def test_wait_results_with_a_tiny_timeout_returns_at_once_with_what_arrived(self, bus: CommandBus) -> None:
        import time

        started = time.monotonic()

        assert bus.wait_results(["never-sent"], timeout_s=0.001) == {}
        assert time.monotonic() - started < 0.1
