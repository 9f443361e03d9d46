"""The bus contract on the embedded PostgreSQL bus, plus what only it promises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bus_contract import PARTITIONS, BusContract, StreamFactory, create, poll_until

from syncbackbone.commands.ports import CommandBus, CommandStream, PartitionOutcome
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.postgres.bus import PostgresCommandBus
from syncbackbone.infra.postgres.log import PostgresEventLog
from syncbackbone.infra.postgres.stream import PostgresCommandStream


class TestPostgresBus(BusContract):
    @pytest.fixture
    def bus(self, pg_dsn: str, namespace: str, codec: AvroCodec) -> Iterator[CommandBus]:
        bus = PostgresCommandBus(pg_dsn, namespace, codec, PARTITIONS)
        yield bus
        bus.close()

    @pytest.fixture
    def make_stream(self, pg_dsn: str, namespace: str) -> Iterator[StreamFactory]:
        opened: list[tuple[PostgresEventLog, CommandStream]] = []

        def make() -> CommandStream:
            log = PostgresEventLog(pg_dsn, namespace, PARTITIONS)
            opened.append((log, PostgresCommandStream(pg_dsn, namespace, log)))
            return opened[-1][1]

        yield make
        for log, stream in opened:
            stream.close()
            log.close()

    def test_commit_appends_the_accepted_events_to_the_log(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec, pg_dsn: str, namespace: str
    ) -> None:
        command = create("a")
        bus.send([command])
        stream = make_stream()
        (record,) = poll_until(stream, 1)

        (result,) = stream.commit(
            PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)])
        )

        log = PostgresEventLog(pg_dsn, namespace, PARTITIONS)
        try:
            (stored,) = log.find_command(command.aggregate_id, command.command_id)
        finally:
            log.close()
        assert result.positions == (stored.position,)
