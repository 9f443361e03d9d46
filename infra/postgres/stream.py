"""The processor's side of the embedded bus: a lease-based group over the ``commands`` table.

A commit appends the events, inserts results and dead letters and advances the consumer
offset in one PostgreSQL transaction, after checking this stream's epoch (G2, G8).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...commands.ports import CommandRecord, CommandStream, PartitionOutcome
from ...commands.results import CommandResult, accepted
from ...domain.errors import LogError, WriterFenced
from ..common.backoff import poll
from .bus import insert_dead_letters, insert_results
from .database import Database
from .log import PostgresEventLog, append_events
from .tables import ensure_bus, schema_name

POLL_LIMIT = 2000
HEARTBEAT_EVERY_S = 1.0
LEASE_S = 5.0  # a partition whose owner has not heartbeaten for this long may be taken over


class PostgresCommandStream(CommandStream):
    """The processor's side of the embedded bus: a lease-based group.

    Each stream takes the partitions whose owner has not heartbeaten for ``LEASE_S``
    (claiming bumps the epoch, fencing the old owner); a second stream stands by and
    takes over when the first one dies."""

    def __init__(self, dsn: str, namespace: str, log: PostgresEventLog, group: str = "processor") -> None:
        self.namespace = namespace
        self._s = schema_name(namespace)
        self._log = log
        self._group = group
        self._callbacks: list[Callable[[frozenset[int]], None]] = []
        self._owned: frozenset[int] = frozenset()
        self._fetch: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._beat_at = float("-inf")
        self._database = Database(
            dsn, f"command stream {namespace!r}", 2, lambda conn: ensure_bus(conn, namespace, log.partitions)
        )

    def on_reassign(self, callback: Callable[[frozenset[int]], None]) -> None:
        self._callbacks.append(callback)

    def poll(self, timeout_s: float) -> list[CommandRecord]:
        if time.monotonic() - self._beat_at >= HEARTBEAT_EVERY_S:
            self._heartbeat()
            self._assign()
        records = poll(self._fetch_records, timeout_s)
        for r in records:
            self._fetch[r.partition] = r.offset + 1
        return records

    def _assign(self) -> None:
        """Take over the partitions nobody heartbeats (a group of one active owner per partition)."""
        if len(self._owned) == self._log.partitions:
            return
        taken = self._log.claim_free(set(range(self._log.partitions)) - self._owned, LEASE_S)
        if not taken:
            return
        rows = self._database.fetchall(
            f"SELECT partition, next_offset FROM {self._s}.consumer_offsets"
            " WHERE group_name = %s AND partition = ANY(%s)",
            [self._group, sorted(taken)],
        )
        offsets = {p: 0 for p in taken} | {int(p): int(o) for p, o in rows}
        self._committed.update(offsets)
        self._fetch.update(offsets)
        self._reassigned(self._owned | taken)

    def _reassigned(self, owned: frozenset[int]) -> None:
        self._owned = owned
        for callback in self._callbacks:
            callback(owned)

    def _heartbeat(self) -> None:
        """Mark the partitions still ours as alive; drop (and report) those another stream claimed."""
        epochs = self._log.claimed_epochs
        with self._database.connection() as conn:
            rows = conn.execute(
                f"SELECT partition, epoch FROM {self._s}.partitions WHERE partition = ANY(%s)".encode(),
                [sorted(self._owned)],
            ).fetchall()
            still = frozenset(int(p) for p, e in rows if epochs.get(int(p)) == e)
            conn.execute(
                f"UPDATE {self._s}.partitions SET heartbeat_at = now() WHERE partition IN (SELECT partition"
                f" FROM {self._s}.partitions WHERE partition = ANY(%s) FOR UPDATE SKIP LOCKED)".encode(),
                [sorted(still)],
            )
        self._beat_at = time.monotonic()
        if still != self._owned:
            self._reassigned(still)

    def _fetch_records(self) -> list[CommandRecord]:
        if not self._owned:
            return []
        per_partition = max(1, POLL_LIMIT // len(self._owned))
        fetch = {p: self._fetch.get(p, 0) for p in sorted(self._owned)}
        rows = self._database.fetchall(
            f'SELECT c.partition, c."offset", c.key, c.value, c.header_keys, c.header_values'
            f" FROM unnest(%s::int[], %s::bigint[]) AS f(p, o) CROSS JOIN LATERAL ("
            f'  SELECT * FROM {self._s}.commands WHERE partition = f.p AND "offset" >= f.o'
            f'  ORDER BY "offset" LIMIT %s) c ORDER BY c.partition, c."offset"',
            [list(fetch), list(fetch.values()), per_partition],
        )
        return [
            CommandRecord(p, o, k, bytes(v), tuple(zip(hk, map(bytes, hv), strict=True))) for p, o, k, v, hk, hv in rows
        ]

    def rewind(self) -> None:
        self._fetch = {p: self._committed.get(p, 0) for p in self._fetch}

    def commit(self, outcome: PartitionOutcome) -> list[CommandResult]:
        try:
            results = self._commit(outcome)
        except BaseException:
            self._fetch[outcome.partition] = self._committed.get(outcome.partition, 0)
            raise
        self._committed[outcome.partition] = outcome.next_offset
        self._fetch[outcome.partition] = max(self._fetch.get(outcome.partition, 0), outcome.next_offset)
        return results

    def _commit(self, outcome: PartitionOutcome) -> list[CommandResult]:
        epochs = self._log.claimed_epochs
        if outcome.partition not in epochs:
            raise WriterFenced(f"partition {outcome.partition} of {self.namespace!r} is not owned by this stream")
        events = [e for _, _, batch in outcome.accepted for e in batch]
        with self._database.connection() as conn, conn.transaction():
            appended = append_events(
                conn, self.namespace, self._log.partitions, events, epochs, fence=[outcome.partition]
            )
            results, start = [], 0
            for command_id, aggregate_id, batch in outcome.accepted:
                results.append(accepted(command_id, aggregate_id, appended.stored[start : start + len(batch)]))
                start += len(batch)
            results.extend(outcome.answered)
            insert_results(conn, self._s, outcome.partition, results)
            insert_dead_letters(conn, self._s, outcome.dead)
            conn.execute(
                f"INSERT INTO {self._s}.consumer_offsets (group_name, partition, next_offset) VALUES (%s, %s, %s)"
                " ON CONFLICT (group_name, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset".encode(),
                [self._group, outcome.partition, outcome.next_offset],
            )
        return results

    def close(self) -> None:
        """Stop heartbeating the partitions still ours (so nobody waits on a gone processor), then disconnect."""
        try:
            if self._owned:
                self._clear_heartbeats()
        except LogError:
            pass  # best effort: the heartbeat expires by itself
        finally:
            self._database.close()

    def _clear_heartbeats(self) -> None:
        epochs = {p: e for p, e in self._log.claimed_epochs.items() if p in self._owned}
        self._database.execute(
            f"UPDATE {self._s}.partitions SET heartbeat_at = NULL WHERE partition IN (SELECT partition"
            f" FROM {self._s}.partitions WHERE (partition, epoch) IN"
            " (SELECT * FROM unnest(%s::int[], %s::bigint[])) ORDER BY partition FOR UPDATE)",
            [list(epochs), list(epochs.values())],
        )
