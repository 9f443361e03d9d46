"""The contract every command bus passes: ``CommandBus`` and ``CommandStream`` together.

Subclass ``BusContract`` and provide two fixtures: ``bus`` (a CommandBus on the test's
namespace with 4 partitions, using the ``codec`` fixture) and ``make_stream``, a
function that opens a new CommandStream of the ``processor`` group on the same namespace
(as a new processor process would, with its own event log), closed after the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from syncbackbone.commands.models import Command, CreateDocument
from syncbackbone.commands.ports import CommandBus, CommandRecord, CommandStream, PartitionOutcome
from syncbackbone.commands.results import CommandResult, DeadLetter, rejected
from syncbackbone.domain.documents import DocumentCreated
from syncbackbone.domain.errors import ConcurrencyConflict, WriterFenced
from syncbackbone.domain.records import EventMeta, NewEvent
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.common.partitioning import partition_for

PARTITIONS = 4
StreamFactory = Callable[[], CommandStream]


def create(doc_id: str, n: int = 0) -> CreateDocument:
    return CreateDocument(collection="docs", id=doc_id, data={"n": n})


def poll_until(stream: CommandStream, count: int, timeout_s: float = 20.0) -> list[CommandRecord]:
    """Poll until ``count`` records arrived (or fail after ``timeout_s``)."""
    records: list[CommandRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records.extend(stream.poll(0.2))
    assert len(records) == count, f"polled {len(records)} records, expected {count}"
    return records


class BusContract:
    """Behaviour every command bus must show; subclasses provide ``bus`` and ``make_stream``."""

    @pytest.fixture
    def codec(self) -> AvroCodec:
        return AvroCodec()

    @pytest.fixture
    def bus(self) -> CommandBus:
        raise NotImplementedError("a subclass provides bus")

    @pytest.fixture
    def make_stream(self) -> StreamFactory:
        raise NotImplementedError("a subclass provides make_stream")

    def accept(self, codec: AvroCodec, command: Command, version: int = 1) -> tuple[str, str, list[NewEvent]]:
        """The accepted-command entry of an outcome: one DocumentCreated event at ``version``."""
        event = codec.new_event(
            command.aggregate_id, version, DocumentCreated({"n": 1}), EventMeta(causation_id=command.command_id)
        )
        return (command.command_id, command.aggregate_id, [event])

    def test_a_stream_polls_sent_commands_in_order_on_their_aggregates_partitions(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        sent = [create(f"d{i % 3}", i) for i in range(9)]
        bus.send(sent[:4])
        bus.send(sent[4:])

        records = poll_until(make_stream(), len(sent))

        by_id = {c.command_id: c for c in sent}
        assert sorted(codec.decode_command(r.value).command_id for r in records) == sorted(by_id)
        for record in records:
            command = codec.decode_command(record.value)
            assert command == by_id[command.command_id]
            assert record.key == command.aggregate_id
            assert record.partition == partition_for(command.aggregate_id, PARTITIONS)
            assert ("command_id", command.command_id.encode()) in record.headers
        for doc in ("d0", "d1", "d2"):
            mine = [r for r in records if r.key == f"docs/{doc}"]
            assert [codec.decode_command(r.value) for r in mine] == [c for c in sent if c.id == doc]
            assert [r.offset for r in mine] == sorted(r.offset for r in mine)

    def test_the_first_poll_reports_the_owned_partitions(self, bus: CommandBus, make_stream: StreamFactory) -> None:
        stream = make_stream()
        owned: list[frozenset[int]] = []
        stream.on_reassign(owned.append)
        bus.send([create("a")])

        poll_until(stream, 1)

        assert owned[0] == frozenset(range(PARTITIONS))

    def test_commit_publishes_results_that_wait_results_returns(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        ok, refused = create("a"), create("b")
        bus.send([ok])
        stream = make_stream()
        (record,) = poll_until(stream, 1)
        outcome = PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, ok)])
        outcome.answered.append(rejected(refused.command_id, refused.aggregate_id, 3, "no", "rejected"))

        published = stream.commit(outcome)
        arrived = bus.wait_results([ok.command_id, refused.command_id], timeout_s=10)

        assert {r.command_id: r for r in published} == arrived
        assert arrived[ok.command_id].status == "accepted" and arrived[ok.command_id].version == 1
        (position,) = arrived[ok.command_id].positions
        assert position.partition == partition_for(ok.aggregate_id, PARTITIONS)
        assert arrived[refused.command_id] == published[1]

    def test_wait_results_returns_only_what_arrived_in_time(self, bus: CommandBus) -> None:
        started = time.monotonic()

        assert bus.wait_results(["never-sent"], timeout_s=0.3) == {}
        assert time.monotonic() - started >= 0.3

    def test_the_first_result_of_a_command_wins(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        command = create("a")
        bus.send([command, command])
        stream = make_stream()
        first, second = poll_until(stream, 2)
        stream.commit(PartitionOutcome(first.partition, first.offset + 1, accepted=[self.accept(codec, command)]))
        late = rejected(command.command_id, command.aggregate_id, 1, "again", "rejected")
        stream.commit(PartitionOutcome(second.partition, second.offset + 1, answered=[late]))

        result = bus.wait_results([command.command_id], timeout_s=10)[command.command_id]

        assert result.status == "accepted"

    def test_a_command_sent_again_gets_the_result_decided_after_it_was_sent_again(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        command = create("a")
        bus.send([command])
        stream = make_stream()
        (first,) = poll_until(stream, 1)
        refused = rejected(command.command_id, command.aggregate_id, 0, "not yet", "rejected")
        stream.commit(PartitionOutcome(first.partition, first.offset + 1, answered=[refused]))
        assert bus.wait_results([command.command_id], timeout_s=10)[command.command_id].status == "rejected"

        bus.send([command])  # a retry, once what made it fail has changed
        assert bus.wait_results([command.command_id], timeout_s=0.3) == {}, "the old rejection is not the answer"
        (again,) = poll_until(stream, 1)
        stream.commit(PartitionOutcome(again.partition, again.offset + 1, accepted=[self.accept(codec, command)]))

        assert bus.wait_results([command.command_id], timeout_s=10)[command.command_id].status == "accepted"

    def test_a_rewind_delivers_the_records_polled_since_the_last_commit_again(
        self, bus: CommandBus, make_stream: StreamFactory
    ) -> None:
        bus.send([create("a", i) for i in range(3)])
        stream = make_stream()
        polled = poll_until(stream, 3)

        stream.rewind()

        assert [(r.partition, r.offset) for r in poll_until(stream, 3)] == [(r.partition, r.offset) for r in polled]

    def test_commit_advances_the_offset_so_a_new_stream_resumes_after_it(
        self, bus: CommandBus, make_stream: StreamFactory
    ) -> None:
        bus.send([create("a", i) for i in range(3)])
        first = make_stream()
        records = poll_until(first, 3)
        first.commit(PartitionOutcome(records[0].partition, records[1].offset + 1))
        first.close()

        resumed = poll_until(make_stream(), 1)

        assert resumed == [records[2]]

    def test_a_failed_commit_delivers_the_records_again_from_the_committed_offset(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        commands = [create("a", i) for i in range(2)]
        bus.send(commands)
        stream = make_stream()
        records = poll_until(stream, 2)
        clash = self.accept(codec, commands[0], version=7)

        with pytest.raises(ConcurrencyConflict):
            stream.commit(PartitionOutcome(records[0].partition, records[1].offset + 1, accepted=[clash]))

        assert poll_until(stream, 2) == records

    def test_dead_letters_are_listed_with_their_reason(self, bus: CommandBus, make_stream: StreamFactory) -> None:
        bus.send([create("a")])
        stream = make_stream()
        (record,) = poll_until(stream, 1)
        letter = DeadLetter(
            record.partition, record.offset, record.key, record.value, "InvalidInput", "bad", record.headers
        )

        stream.commit(PartitionOutcome(record.partition, record.offset + 1, dead=[letter]))

        assert bus.dead_letters() == [letter]
        assert bus.dead_letters(limit=0) == []

    def test_a_second_stream_fences_the_first(
        self, bus: CommandBus, make_stream: StreamFactory, codec: AvroCodec
    ) -> None:
        command = create("a")
        bus.send([command])
        first = make_stream()
        (record,) = poll_until(first, 1)
        second = make_stream()
        poll_until(second, 1)

        with pytest.raises(WriterFenced):
            first.commit(PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)]))
        published: list[CommandResult] = second.commit(
            PartitionOutcome(record.partition, record.offset + 1, accepted=[self.accept(codec, command)])
        )

        assert bus.wait_results([command.command_id], timeout_s=10) == {command.command_id: published[0]}

    def test_the_processor_is_alive_while_a_stream_polls(self, bus: CommandBus, make_stream: StreamFactory) -> None:
        assert not bus.processor_alive()

        make_stream().poll(0.05)

        assert bus.processor_alive()

    def test_the_processor_is_not_alive_once_its_stream_closed(
        self, bus: CommandBus, make_stream: StreamFactory
    ) -> None:
        stream = make_stream()
        stream.poll(0.05)

        stream.close()

        assert not bus.processor_alive()
