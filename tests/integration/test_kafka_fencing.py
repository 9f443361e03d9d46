"""G8 on Kafka: a stale partition owner (zombie) is fenced, and nothing of its failed commit shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import groupby

import pytest

from syncbackbone.commands.models import Command, PutDocument
from syncbackbone.commands.ports import CommandRecord, CommandStream
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.domain.errors import WriterFenced
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.kafka.bus import KafkaCommandBus
from syncbackbone.infra.kafka.client import Connect
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.kafka.stream import KafkaCommandStream
from syncbackbone.infra.runtime.processes import Tansu

DOCS = [f"d{i}" for i in range(8)]


class Processor:
    """A log, a stream and a command processor, as one processor process has them."""

    def __init__(self, tansu: Tansu, namespace: str, connect: Connect, group: str | None = None) -> None:
        self.codec = AvroCodec()
        self.log = KafkaEventLog(tansu.bootstrap, namespace, self.codec, connect=connect)
        fast = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
        self.stream = KafkaCommandStream(
            tansu.bootstrap, namespace, self.log, self.codec, group, **fast, connect=connect
        )
        self.processor = CommandProcessor(self.log, self.stream, self.codec)
        self.claimed = threading.Event()
        self.stream.on_reassign(lambda owned: self.claimed.set())

    def close(self) -> None:
        self.stream.close()
        self.log.close()


@pytest.fixture
def bus(tansu: Tansu, namespace: str, connect: Connect) -> Iterator[KafkaCommandBus]:
    bus = KafkaCommandBus(tansu.bootstrap, namespace, AvroCodec(), connect=connect)
    yield bus
    bus.close()


@pytest.fixture
def processors(tansu: Tansu, namespace: str) -> Iterator[list[Processor]]:
    opened: list[Processor] = []
    yield opened
    for p in opened:
        p.close()


def puts(n: int) -> list[Command]:
    return [PutDocument(collection="docs", id=doc, data={"n": n}) for doc in DOCS]


def process_until_answered(p: Processor, bus: KafkaCommandBus, commands: list[Command]) -> None:
    ids = [c.command_id for c in commands]
    deadline = time.monotonic() + 30
    while len(bus.wait_results(ids, 0.001)) < len(ids):
        assert time.monotonic() < deadline, "the commands were not all answered in time"
        p.processor.run_once(0.2)


def poll_until(stream: CommandStream, count: int) -> list[CommandRecord]:
    records: list[CommandRecord] = []
    deadline = time.monotonic() + 30
    while len(records) < count and time.monotonic() < deadline:
        records.extend(stream.poll(0.2))
    assert len(records) == count
    return records


def test_a_zombie_owner_is_fenced_and_nothing_of_its_failed_commit_is_ever_read(
    tansu: Tansu, namespace: str, bus: KafkaCommandBus, processors: list[Processor], connect: Connect
) -> None:
    zombie = Processor(tansu, namespace, connect)
    processors.append(zombie)
    first = puts(1)
    bus.send(first)
    process_until_answered(zombie, bus, first)
    second = puts(2)
    bus.send(second)
    records = poll_until(zombie.stream, len(second))
    outcomes = [zombie.processor.decide(list(run)) for _, run in groupby(records, key=lambda r: r.partition)]
    zombie_events = {e.meta.event_id for o in outcomes for _, _, batch in o.accepted for e in batch}

    # The zombie stalls; a new owner takes its partitions over (a group of its own: see TestKafkaBus).
    owner = Processor(tansu, namespace, connect, group=f"{namespace}.takeover")
    processors.append(owner)
    while not owner.claimed.is_set():
        owner.processor.run_once(0.2)
    for outcome in outcomes:
        with pytest.raises(WriterFenced):
            zombie.stream.commit(outcome)
    process_until_answered(owner, bus, second)
    third = puts(3)
    bus.send(third)
    process_until_answered(owner, bus, third)

    assert_the_log_holds_exactly(tansu, namespace, bus, [first, second, third], zombie_events, connect)


def assert_the_log_holds_exactly(
    tansu: Tansu,
    namespace: str,
    bus: KafkaCommandBus,
    batches: list[list[Command]],
    without: set[str],
    connect: Connect,
) -> None:
    """Each command's one event, where its result says, as version n of batch n; none of ``without``."""
    commands = [c for batch in batches for c in batch]
    results = bus.wait_results([c.command_id for c in commands], 1)
    assert {r.status for r in results.values()} == {"accepted"}
    reader = KafkaEventLog(tansu.bootstrap, namespace, AvroCodec(), connect=connect)
    try:
        logged = [s for p in range(reader.partitions) for s in reader.read_partition(p, 0, limit=10_000)]
        assert not without & {s.event.meta.event_id for s in logged}
        assert len(logged) == len(commands)  # the first batch, read again by the new owner, is not appended twice
        for command in commands:
            (stored,) = reader.find_command(command.aggregate_id, command.command_id)
            assert results[command.command_id].positions == (stored.position,)
        for doc in DOCS:
            assert [s.version for s in reader.read_aggregate(f"docs/{doc}")] == list(range(1, len(batches) + 1))
    finally:
        reader.close()
