"""The embedded event log: a partitioned, append-only PostgreSQL table with the Kafka log's contract.

Offsets are assigned under a row lock on each partition's ``partitions`` row and
committed before the lock is released, so a reader never sees offset n and later a
record below n appear. A global ``notification_id`` (from the single ``log_head`` row,
locked after the partition rows) gives every event a gapless total order.
``append_events`` is the one append path: ``PostgresEventLog.append``, the command
stream's commit and the eventsourcing recorders all call it inside their transaction.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from threading import Lock
from typing import Any

from ...commands.ports import EventLog
from ...commands.versions import check_next_versions
from ...domain.errors import WriterFenced
from ...domain.records import EventMeta, NewEvent, Position, StoredEvent
from ..common.partitioning import partition_for
from .database import Conn, Cursor, Database, pipelined, write_rows
from .tables import ensure_log, schema_name

META_COLUMNS = tuple(f.name for f in fields(EventMeta))
EVENT_COLUMNS = ("aggregate_id", "version", "type", "payload", *META_COLUMNS)
SELECT_COLUMNS = ", ".join(("partition", '"offset"', *EVENT_COLUMNS, "recorded_at_ms"))
INSERT_COLUMNS = ", ".join(("partition", '"offset"', "notification_id", *EVENT_COLUMNS, "recorded_at_ms"))


def row_to_stored(row: Sequence[Any]) -> StoredEvent:
    """A StoredEvent from a row of ``SELECT_COLUMNS``."""
    partition, offset, aggregate_id, version, type_, payload, *rest = row
    meta = EventMeta(*rest[: len(META_COLUMNS)])
    event = NewEvent(aggregate_id, int(version), type_, bytes(payload), meta)
    return StoredEvent(event, Position(int(partition), int(offset)), int(rest[-1]))


@dataclass(frozen=True, slots=True)
class Appended:
    """What one append wrote: the stored events, in input order, and their notification ids."""

    stored: list[StoredEvent]
    first_notification_id: int

    @property
    def notification_ids(self) -> list[int]:
        return list(range(self.first_notification_id, self.first_notification_id + len(self.stored)))


def append_events(
    conn: Conn,
    namespace: str,
    partitions: int,
    events: Sequence[NewEvent],
    epochs: Mapping[int, int],
    fence: Collection[int] = (),
) -> Appended:
    """Append ``events`` inside the caller's open transaction on ``conn``, all or none (on an error the
    caller's transaction must roll back: it may hold reserved notification ids).

    Raise WriterFenced if a partition written (or listed in ``fence``) is in ``epochs`` but
    was claimed by someone else since, and ConcurrencyConflict if a version is not its
    aggregate's next one. The partition locks, the current versions and the notification ids
    are asked for in one round trip (a pipeline); the events go in with one COPY, or with the rest of
    the caller's pipeline (``pipelined``, for a few events).
    """
    s = schema_name(namespace)
    placed = [partition_for(e.aggregate_id, partitions) for e in events]
    locked = sorted(set(placed) | set(fence))
    with conn.pipeline():
        locks = conn.execute(
            f"SELECT partition, next_offset, epoch FROM {s}.partitions WHERE partition = ANY(%s)"
            " ORDER BY partition FOR UPDATE".encode(),
            [locked],
        )
        if events:
            versions = current_versions(conn, s, {e.aggregate_id for e in events})
            head = reserve_notification_ids(conn, s, len(events))
    next_offsets = checked_offsets(locks.fetchall(), locked, epochs)
    if not events:
        return Appended([], 0)
    current = {str(a): int(v) for a, v in versions.fetchall() if v is not None}
    check_next_versions(events, lambda aggregate_id: current.get(aggregate_id, 0))
    first_id = first_reserved(head)
    stored = place(events, placed, next_offsets)
    write_events(conn, s, stored, first_id)
    conn.execute(
        f"UPDATE {s}.partitions p SET next_offset = n.o FROM unnest(%s::int[], %s::bigint[]) AS n(p, o)"
        " WHERE p.partition = n.p".encode(),
        [list(next_offsets), list(next_offsets.values())],
    )
    return Appended(stored, first_id)


def place(events: Sequence[NewEvent], placed: Sequence[int], next_offsets: dict[int, int]) -> list[StoredEvent]:
    """Give each event the next offset of its partition (advancing ``next_offsets``)."""
    now_ms = time.time_ns() // 1_000_000
    stored = []
    for event, partition in zip(events, placed, strict=True):
        stored.append(StoredEvent(event, Position(partition, next_offsets[partition]), now_ms))
        next_offsets[partition] += 1
    return stored


def checked_offsets(rows: Sequence[Any], partitions: list[int], epochs: Mapping[int, int]) -> dict[int, int]:
    """The next offsets of the locked partition ``rows`` (partition, next_offset, epoch), after checking
    that each one is still ours by ``epochs`` (WriterFenced) and that every one of ``partitions`` exists."""
    for partition, _, epoch in rows:
        if partition in epochs and epochs[partition] != epoch:
            raise WriterFenced(
                f"partition {partition} was claimed by another writer (epoch {epoch}, ours {epochs[partition]})"
            )
    found = {int(p): int(o) for p, o, _ in rows}
    missing = set(partitions) - set(found)
    if missing:
        raise ValueError(f"no partition {sorted(missing)} in this log")
    return found


def current_versions(conn: Conn, s: str, aggregate_ids: Collection[str]) -> Cursor:
    """Ask for the latest version of each aggregate (rows: aggregate id, version or NULL)."""
    return conn.execute(
        f"SELECT a.id, (SELECT max(version) FROM {s}.events WHERE aggregate_id = a.id)"
        " FROM unnest(%s::text[]) AS a(id)".encode(),
        [list(aggregate_ids)],
    )


def reserve_notification_ids(conn: Conn, s: str, count: int) -> Cursor:
    """Take ``count`` ids of the total order (the head row stays locked until commit); ``first_reserved``
    reads the first one."""
    return conn.execute(
        f"UPDATE {s}.log_head SET next_notification_id = next_notification_id + %s"
        " RETURNING next_notification_id - %s".encode(),
        [count, count],
    )


def first_reserved(head: Cursor) -> int:
    """The first of the notification ids ``reserve_notification_ids`` took."""
    row = head.fetchone()
    assert row is not None, "log_head row is missing"
    return int(row[0])


def write_events(conn: Conn, s: str, stored: Sequence[StoredEvent], first_id: int) -> None:
    """Write the events (the hot path: one COPY, or one INSERT of arrays in a pipeline)."""
    rows = [
        (
            se.position.partition,
            se.position.offset,
            first_id + i,
            se.event.aggregate_id,
            se.event.version,
            se.event.type,
            se.event.payload,
            *[getattr(se.event.meta, name) for name in META_COLUMNS],
            se.recorded_at_ms,
        )
        for i, se in enumerate(stored)
    ]
    write_rows(conn, f"{s}.events", INSERT_COLUMNS, rows)


class PostgresEventLog(EventLog):
    """The embedded event log: tables ``partitions``, ``log_head`` and ``events`` in schema ``namespace``."""

    def __init__(self, dsn: str, namespace: str, partitions: int = 4) -> None:
        self.namespace = namespace
        self._s = schema_name(namespace)
        self._partitions = partitions
        self._epochs: dict[int, int] = {}
        self._lock = Lock()
        self.database = Database(
            dsn, f"event log {namespace!r}", setup=lambda conn: ensure_log(conn, namespace, partitions)
        )

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def claimed_epochs(self) -> dict[int, int]:
        """The epoch of each partition this log claimed (a copy)."""
        with self._lock:
            return dict(self._epochs)

    def partition_for(self, aggregate_id: str) -> int:
        return partition_for(aggregate_id, self._partitions)

    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        return self.append_with_ids(events).stored

    def append_with_ids(self, events: Sequence[NewEvent]) -> Appended:
        """Append like ``append`` and also return the notification ids (the total order)."""
        if not events:
            return Appended([], 0)
        with self.database.connection() as conn, pipelined(conn, len(events)), conn.transaction():
            return append_events(conn, self.namespace, self._partitions, events, self.claimed_epochs)

    def read_aggregate(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        return self._select(
            "aggregate_id = %s AND version >= %s AND version <= coalesce(%s, version) ORDER BY version",
            [aggregate_id, from_version, to_version],
        )

    def read_partition(self, partition: int, from_offset: int, limit: int = 1000) -> list[StoredEvent]:
        return self._select(
            'partition = %s AND "offset" >= %s ORDER BY "offset" LIMIT %s', [partition, from_offset, limit]
        )

    def end_offset(self, partition: int) -> int:
        row = self.database.fetchone(f"SELECT next_offset FROM {self._s}.partitions WHERE partition = %s", [partition])
        if row is None:
            raise ValueError(f"no partition {partition} in this log")
        return int(row[0])

    def find_command(self, aggregate_id: str, command_id: str) -> list[StoredEvent]:
        return self._select("aggregate_id = %s AND causation_id = %s ORDER BY version", [aggregate_id, command_id])

    def find_commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        found: dict[str, list[StoredEvent]] = {}
        if keys:
            aggregates, commands = zip(*keys, strict=True)
            for stored in self._select(
                "(aggregate_id, causation_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                " ORDER BY aggregate_id, version",
                [list(aggregates), list(commands)],
            ):
                found.setdefault(str(stored.event.meta.causation_id), []).append(stored)
        return found

    def read_aggregates_from(self, from_versions: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
        found: dict[str, list[StoredEvent]] = {agg: [] for agg in from_versions}
        if found:
            wanted = "unnest(%s::text[], %s::bigint[]) AS w(a, f), "
            where = "aggregate_id = a AND version >= f ORDER BY aggregate_id, version"
            for stored in self._select(where, [list(found), [from_versions[a] for a in found]], wanted):
                found[stored.aggregate_id].append(stored)
        return found

    def claim(self, partitions: Collection[int]) -> None:
        self._claim(partitions, lease_s=None)

    def claim_free(self, partitions: Collection[int], lease_s: float) -> frozenset[int]:
        """Claim those of ``partitions`` whose owner's heartbeat is older than ``lease_s`` (or absent)."""
        return self._claim(partitions, lease_s)

    def _claim(self, partitions: Collection[int], lease_s: float | None) -> frozenset[int]:
        free = (
            "" if lease_s is None else " AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => %s))"
        )
        params: list[Any] = [sorted(partitions)] + ([] if lease_s is None else [lease_s])
        rows = self.database.fetchall(
            f"UPDATE {self._s}.partitions SET epoch = epoch + 1, heartbeat_at = now() WHERE partition IN"
            f" (SELECT partition FROM {self._s}.partitions WHERE partition = ANY(%s){free}"
            " ORDER BY partition FOR UPDATE) RETURNING partition, epoch",
            params,
        )
        with self._lock:
            self._epochs.update({int(p): int(e) for p, e in rows})
        return frozenset(int(p) for p, _ in rows)

    def close(self) -> None:
        self.database.close()

    def _select(self, where: str, params: Sequence[Any], joined: str = "") -> list[StoredEvent]:
        rows = self.database.fetchall(f"SELECT {SELECT_COLUMNS} FROM {joined}{self._s}.events WHERE {where}", params)
        return [row_to_stored(r) for r in rows]
