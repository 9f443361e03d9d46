"""What the embedded bus adds to the bus contract for speed: a round's partitions commit in one transaction,
and waiters are woken by the commits they wait for (LISTEN/NOTIFY) instead of polling with back-off.

Neither may cost a guarantee: a partition taken by another writer is still fenced while the others of the
round commit (G8), and a result committed between two waits is never missed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from bus_contract import PARTITIONS, create, poll_until

from syncbackbone.commands.models import Command
from syncbackbone.commands.ports import CommandRecord, PartitionOutcome
from syncbackbone.domain.documents import DocumentCreated
from syncbackbone.domain.errors import LogError, WriterFenced
from syncbackbone.domain.records import EventMeta
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.postgres.bus import PostgresCommandBus
from syncbackbone.infra.postgres.log import PostgresEventLog
from syncbackbone.infra.postgres.stream import PostgresCommandStream
from syncbackbone.infra.postgres.wakeups import Wakeups, notify

CODEC = AvroCodec()


@pytest.fixture
def bus(pg_dsn: str, namespace: str) -> Iterator[PostgresCommandBus]:
    made = PostgresCommandBus(pg_dsn, namespace, CODEC, PARTITIONS)
    yield made
    made.close()


@pytest.fixture
def log(pg_dsn: str, namespace: str) -> Iterator[PostgresEventLog]:
    made = PostgresEventLog(pg_dsn, namespace, PARTITIONS)
    yield made
    made.close()


@pytest.fixture
def stream(pg_dsn: str, namespace: str, log: PostgresEventLog) -> Iterator[PostgresCommandStream]:
    made = PostgresCommandStream(pg_dsn, namespace, log)
    yield made
    made.close()


def accept(command: Command, record: CommandRecord) -> PartitionOutcome:
    """The outcome accepting ``command`` (its one record) with one DocumentCreated event."""
    event = CODEC.new_event(
        command.aggregate_id, 1, DocumentCreated({"n": 1}), EventMeta(causation_id=command.command_id)
    )
    return PartitionOutcome(
        record.partition, record.offset + 1, accepted=[(command.command_id, command.aggregate_id, [event])]
    )


def one_per_partition(
    bus: PostgresCommandBus, stream: PostgresCommandStream, log: PostgresEventLog
) -> list[tuple[Command, CommandRecord]]:
    """Commands on documents of distinct partitions, sent and polled (one record each)."""
    commands: dict[int, Command] = {}
    for i in range(100):
        command = create(f"doc-{i}")
        commands.setdefault(log.partition_for(command.aggregate_id), command)
    bus.send(list(commands.values()))
    records = poll_until(stream, len(commands))
    return [(commands[r.partition], r) for r in records]


def test_a_round_of_every_partition_commits_all_its_outcomes(
    bus: PostgresCommandBus, stream: PostgresCommandStream, log: PostgresEventLog
) -> None:
    sent = one_per_partition(bus, stream, log)

    published = stream.commit_many([accept(command, record) for command, record in sent])

    assert len(sent) == PARTITIONS
    waited = bus.wait_results([c.command_id for c, _ in sent], timeout_s=10)
    for (command, _), results in zip(sent, published, strict=True):
        assert not isinstance(results, LogError)
        (stored,) = log.find_command(command.aggregate_id, command.command_id)
        assert [r.positions for r in results] == [(stored.position,)]
        assert waited[command.command_id] == results[0]


def test_a_partition_another_writer_claimed_is_fenced_while_the_round_commits_the_others(
    bus: PostgresCommandBus, stream: PostgresCommandStream, log: PostgresEventLog, pg_dsn: str, namespace: str
) -> None:
    sent = one_per_partition(bus, stream, log)
    taken = sent[0][1].partition
    usurper = PostgresEventLog(pg_dsn, namespace, PARTITIONS)
    try:
        usurper.claim([taken])

        published = stream.commit_many([accept(command, record) for command, record in sent])
    finally:
        usurper.close()

    assert isinstance(published[0], WriterFenced)
    assert log.find_command(sent[0][0].aggregate_id, sent[0][0].command_id) == []
    for (command, _), results in zip(sent[1:], published[1:], strict=True):
        assert not isinstance(results, LogError)
        assert len(log.find_command(command.aggregate_id, command.command_id)) == 1


def test_a_result_committed_between_two_waits_is_found_by_the_second(
    bus: PostgresCommandBus, stream: PostgresCommandStream
) -> None:
    command = create("between")
    bus.send([command])
    (record,) = poll_until(stream, 1)
    assert bus.wait_results([command.command_id], timeout_s=0) == {}

    (result,) = stream.commit(accept(command, record))

    assert bus.wait_results([command.command_id], timeout_s=10) == {command.command_id: result}


def listening(wakeups: Wakeups, but_not: int | None = None, timeout_s: float = 20) -> int:
    """The generation once ``wakeups`` listens (at another generation than ``but_not``)."""
    deadline = time.monotonic() + timeout_s
    while (generation := wakeups.generation()) is None or generation == but_not:
        assert time.monotonic() < deadline, "the listener did not listen"
        time.sleep(0.05)
    return generation


def test_only_a_committed_notification_wakes_the_listeners(pg_dsn: str, namespace: str) -> None:
    wakeups = Wakeups(lambda: psycopg.connect(pg_dsn, autocommit=True), f"{namespace}.test")
    try:
        seen = listening(wakeups)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            with pytest.raises(RuntimeError), conn.transaction():
                notify(conn, f"{namespace}.test")
                raise RuntimeError("rolled back")
            with conn.transaction():
                notify(conn, f"{namespace}.test")

        wakeups.wait(seen, timeout_s=20)

        assert wakeups.generation() == seen + 1
    finally:
        wakeups.close()


def test_a_listener_whose_connection_was_cut_listens_again(pg_dsn: str, namespace: str) -> None:
    channel = f"{namespace}.cut"
    wakeups = Wakeups(lambda: psycopg.connect(pg_dsn, autocommit=True, application_name=channel), channel)
    try:
        seen = listening(wakeups)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [channel]
            )
            again = listening(wakeups, but_not=seen)
            with conn.transaction():
                notify(conn, channel)

        wakeups.wait(again, timeout_s=20)

        assert (wakeups.generation() or 0) > again
    finally:
        wakeups.close()
