"""The embedded command bus: PostgreSQL tables twinned with the Kafka topics.

``commands`` is ``<ns>.commands`` (partitioned like the event log, offsets assigned
under a row lock in ``command_partitions``), ``results`` is ``<ns>.command-results``,
``dead_letters`` is ``<ns>.commands.dlq`` and ``consumer_offsets`` holds each group's
committed input offset. A stream's ``commit`` appends the events, publishes the
results and dead letters and advances the offset in one transaction.

A send wakes the processor and a commit of results wakes the submitters (NOTIFY on
``<ns>.commands`` and ``<ns>.command-results``, delivered at commit): ``wait_results``
sleeps until a wake-up and asks the database nothing again while none came.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Any

from ...commands.models import Command
from ...commands.ports import Codec, CommandBus, RawCommand
from ...commands.results import CommandResult, DeadLetter
from ...domain.records import Position
from ..avro.codec import command_headers
from ..common.bounded import trim
from ..common.partitioning import partition_for
from .database import Conn, Database, pipelined, write_rows
from .tables import ensure_bus, schema_name
from .wakeups import Wakeups, channel, notify, poll_woken

KEPT_MARKS = 1_000_000  # command ids this bus sent, with the result seq before each was sent
RESULT_COLUMNS = "command_id, status, aggregate_id, version, reason, code, positions"
COMMAND_COLUMNS = 'partition, "offset", key, value, header_keys, header_values'


def row_to_result(row: Sequence[Any]) -> CommandResult:
    """A CommandResult from a row of ``RESULT_COLUMNS``."""
    command_id, status, aggregate_id, version, reason, code, positions = row
    return CommandResult(
        command_id, status, aggregate_id, int(version), reason, code, tuple(Position(p, o) for p, o in positions)
    )


def write_results(conn: Conn, s: str, results: Sequence[tuple[int, CommandResult]]) -> None:
    """Publish ``results`` (each with its command's partition); a submitter sees the first one decided after it
    sent the command."""
    rows = [
        (partition, r.command_id, r.status, r.aggregate_id, r.version, r.reason, r.code, positions_json(r.positions))
        for partition, r in results
    ]
    write_rows(conn, f"{s}.results", f"partition, {RESULT_COLUMNS}", rows)


def positions_json(positions: Sequence[Position]) -> str:
    """The ``positions`` column's JSON: ``[[partition, offset], ...]``."""
    return "[" + ",".join(f"[{p.partition},{p.offset}]" for p in positions) + "]"


def insert_dead_letters(conn: Conn, s: str, letters: Sequence[DeadLetter]) -> None:
    """Keep each dead letter whole, with its reason."""
    if not letters:
        return
    with conn.cursor() as cur:
        cur.executemany(
            f'INSERT INTO {s}.dead_letters (partition, "offset", key, value, header_keys, header_values,'
            " error_type, error) VALUES (%s, %s, %s, %s, %s::text[], %s::bytea[], %s, %s)".encode(),
            [
                (
                    d.partition,
                    d.offset,
                    d.key,
                    d.value,
                    [k for k, _ in d.headers],
                    [v for _, v in d.headers],
                    d.error_type,
                    d.error,
                )
                for d in letters
            ],
        )


class PostgresCommandBus(CommandBus):
    """The submitting side of the embedded bus."""

    def __init__(self, dsn: str, namespace: str, codec: Codec, partitions: int = 4) -> None:
        self.namespace = namespace
        self._s = schema_name(namespace)
        self._codec = codec
        self._partitions = partitions
        self._database = Database(
            dsn, f"command bus {namespace!r}", setup=lambda conn: ensure_bus(conn, namespace, partitions)
        )
        self._sent_after: dict[str, int] = {}  # command id -> the last result seq before this bus sent it
        self._wakeups = Wakeups(self._database.connect, channel(namespace, "command-results"))
        self._lock = threading.Lock()
        self._unanswered: tuple[int | None, set[str]] = (None, set())  # looked for at a generation, not decided

    def send(self, commands: Sequence[Command]) -> None:
        """Send ``commands``; their results are the ones decided after this (a command once rejected
        may be sent again and decided afresh)."""
        mark = self._send([(c.aggregate_id, self._codec.encode_command(c), command_headers(c)) for c in commands])
        self._sent_after.update({c.command_id: mark for c in commands})
        trim(self._sent_after, KEPT_MARKS)

    def send_raw(self, records: Sequence[RawCommand]) -> None:
        self._send(records)

    def _send(self, records: Sequence[RawCommand]) -> int:
        """Append ``records`` (offsets assigned under the partition rows' locks) and wake the processor;
        the last result seq before they were sent."""
        if not records:
            return 0
        placed = [partition_for(key, self._partitions) for key, _, _ in records]
        with self._database.connection() as conn, pipelined(conn, len(records)), conn.transaction():
            with conn.pipeline():
                mark = conn.execute(f"SELECT coalesce(max(seq), 0) FROM {self._s}.results".encode())
                locked = conn.execute(
                    f"SELECT partition, next_offset FROM {self._s}.command_partitions WHERE partition = ANY(%s)"
                    " ORDER BY partition FOR UPDATE".encode(),
                    [sorted(set(placed))],
                )
            next_offsets = {int(p): int(o) for p, o in locked.fetchall()}
            rows = []
            for (key, value, headers), partition in zip(records, placed, strict=True):
                rows.append(
                    (partition, next_offsets[partition], key, value, [k for k, _ in headers], [v for _, v in headers])
                )
                next_offsets[partition] += 1
            write_rows(conn, f"{self._s}.commands", COMMAND_COLUMNS, rows)
            conn.execute(
                f"UPDATE {self._s}.command_partitions c SET next_offset = n.o"
                " FROM unnest(%s::int[], %s::bigint[]) AS n(p, o) WHERE c.partition = n.p".encode(),
                [list(next_offsets), list(next_offsets.values())],
            )
            notify(conn, channel(self.namespace, "commands"))
            row = mark.fetchone()
        return int(row[0]) if row else 0

    def wait_results(self, command_ids: Collection[str], timeout_s: float) -> dict[str, CommandResult]:
        found: dict[str, CommandResult] = {}
        wanted = set(command_ids)

        def all_found(generation: int | None) -> bool:
            missing = [c for c in command_ids if c not in found]
            if missing:
                found.update(self._first_results(missing, generation))
            return len(found) == len(wanted)

        poll_woken(all_found, timeout_s, self._wakeups)
        return found

    def _first_results(self, command_ids: list[str], generation: int | None) -> dict[str, CommandResult]:
        """The first result decided after each command was sent, of those there are; no query when the
        commands were all looked for at this ``generation`` and none had one (no result committed since)."""
        with self._lock:
            if (
                generation is not None
                and generation == self._unanswered[0]
                and self._unanswered[1].issuperset(command_ids)
            ):
                return {}
        rows = self._database.fetchall(
            f"SELECT DISTINCT ON (command_id) {RESULT_COLUMNS} FROM {self._s}.results"
            " JOIN unnest(%s::text[], %s::bigint[]) AS w(c, after) ON command_id = c AND seq > after"
            " ORDER BY command_id, seq",
            [command_ids, [self._sent_after.get(c, 0) for c in command_ids]],
        )
        found = {str(r[0]): row_to_result(r) for r in rows}
        with self._lock:
            if generation is not None:
                known = self._unanswered[1] if generation == self._unanswered[0] else set()
                self._unanswered = (generation, (known | set(command_ids)) - set(found))
        return found

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._database.fetchall(
            f'SELECT partition, "offset", key, value, error_type, error, header_keys, header_values'
            f" FROM {self._s}.dead_letters ORDER BY seq DESC LIMIT %s",
            [limit],
        )
        return [
            DeadLetter(p, o, k, bytes(v), et, err, tuple(zip(hk, map(bytes, hv), strict=True)))
            for p, o, k, v, et, err, hk, hv in reversed(rows)
        ]

    def processor_alive(self, max_age_s: float = 5.0) -> bool:
        row = self._database.fetchone(
            f"SELECT coalesce(max(heartbeat_at) > now() - make_interval(secs => %s), false) FROM {self._s}.partitions",
            [max_age_s],
        )
        return bool(row and row[0])

    def close(self) -> None:
        self._wakeups.close()
        self._database.close()
