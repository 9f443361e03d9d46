"""The processor's side of the embedded bus: a lease-based group over the ``commands`` table.

A commit appends the events, inserts results and dead letters and advances the consumer
offset in one PostgreSQL transaction, after checking this stream's epoch (G2, G8). The
outcomes of a round (``commit_many``) share one transaction; if it fails, each is committed
on its own, so one fenced partition holds back none of the others. An idle stream sleeps on
LISTEN (``wakeups.py``) until a send commits, instead of polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ...commands.ports import CommandRecord, CommandStream, PartitionOutcome
from ...commands.results import CommandResult, accepted
from ...domain.errors import LogError, WriterFenced
from ...domain.records import StoredEvent
from .bus import insert_dead_letters, write_results
from .database import Database, pipelined
from .log import PostgresEventLog, append_events
from .tables import ensure_bus, schema_name
from .wakeups import Wakeups, channel, notify, poll_woken

POLL_LIMIT = 2000
HEARTBEAT_EVERY_S = 1.0
LEASE_S = 5.0  # a partition whose owner has not heartbeaten for this long may be taken over


def results_of(outcomes: Sequence[PartitionOutcome], stored: Sequence[StoredEvent]) -> list[list[CommandResult]]:
    """Each outcome's results: its accepted commands' (with the positions of their events, ``stored`` in the
    order of the outcomes' events), then those it answered."""
    published, start = [], 0
    for outcome in outcomes:
        results = []
        for command_id, aggregate_id, batch in outcome.accepted:
            results.append(accepted(command_id, aggregate_id, stored[start : start + len(batch)]))
            start += len(batch)
        published.append(results + outcome.answered)
    return published


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
        self._drained_at: int | None = None  # the wake-up generation at which the last fetch found nothing
        self._database = Database(
            dsn, f"command stream {namespace!r}", 2, lambda conn: ensure_bus(conn, namespace, log.partitions)
        )
        self._wakeups = Wakeups(self._database.connect, channel(namespace, "commands"))

    def on_reassign(self, callback: Callable[[frozenset[int]], None]) -> None:
        self._callbacks.append(callback)

    def poll(self, timeout_s: float) -> list[CommandRecord]:
        if time.monotonic() - self._beat_at >= HEARTBEAT_EVERY_S:
            self._heartbeat()
            self._assign()
        records = poll_woken(self._fetch_records, timeout_s, self._wakeups)
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
        self._drained_at = None
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

    def _fetch_records(self, generation: int | None) -> list[CommandRecord]:
        """The next records of the owned partitions; none without a query when the last fetch found none
        at this ``generation`` (nothing was sent since) and the fetch positions have not moved."""
        if not self._owned or (generation is not None and generation == self._drained_at):
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
        self._drained_at = generation if not rows else None
        return [
            CommandRecord(p, o, k, bytes(v), tuple(zip(hk, map(bytes, hv), strict=True))) for p, o, k, v, hk, hv in rows
        ]

    def rewind(self) -> None:
        self._fetch = {p: self._committed.get(p, 0) for p in self._fetch}
        self._drained_at = None

    def commit(self, outcome: PartitionOutcome) -> list[CommandResult]:
        try:
            (results,) = self._commit_all([outcome])
        except BaseException:
            self._failed([outcome])
            raise
        self._advanced([outcome])
        return results

    def commit_many(self, outcomes: Sequence[PartitionOutcome]) -> list[list[CommandResult] | LogError]:
        """All of a round's outcomes in one transaction (a handful of round trips for the whole round); if
        that fails, each on its own, so that one failing partition (e.g. fenced) does not hold back the others."""
        if len(outcomes) < 2:
            return super().commit_many(outcomes)
        try:
            published = self._commit_all(outcomes)
        except LogError:
            return super().commit_many(outcomes)
        except BaseException:
            self._failed(outcomes)
            raise
        self._advanced(outcomes)
        return list(published)

    def _failed(self, outcomes: Sequence[PartitionOutcome]) -> None:
        """Deliver the outcomes' records again from the committed offsets."""
        for outcome in outcomes:
            self._fetch[outcome.partition] = self._committed.get(outcome.partition, 0)
        self._drained_at = None

    def _advanced(self, outcomes: Sequence[PartitionOutcome]) -> None:
        for outcome in outcomes:
            self._committed[outcome.partition] = outcome.next_offset
            self._fetch[outcome.partition] = max(self._fetch.get(outcome.partition, 0), outcome.next_offset)
        self._drained_at = None

    def _commit_all(self, outcomes: Sequence[PartitionOutcome]) -> list[list[CommandResult]]:
        """Append the outcomes' events, publish their results and dead letters, advance their offsets and
        wake the submitters, in one transaction; each outcome's results."""
        epochs = self._log.claimed_epochs
        for outcome in outcomes:
            if outcome.partition not in epochs:
                raise WriterFenced(f"partition {outcome.partition} of {self.namespace!r} is not owned by this stream")
        events = [e for outcome in outcomes for _, _, batch in outcome.accepted for e in batch]
        partitions = [outcome.partition for outcome in outcomes]
        rows = len(events) + sum(len(o.accepted) + len(o.answered) + len(o.dead) for o in outcomes)
        with self._database.connection() as conn, pipelined(conn, rows), conn.transaction():
            appended = append_events(conn, self.namespace, self._log.partitions, events, epochs, fence=partitions)
            published = results_of(outcomes, appended.stored)
            write_results(
                conn, self._s, [(o.partition, r) for o, rs in zip(outcomes, published, strict=True) for r in rs]
            )
            insert_dead_letters(conn, self._s, [d for outcome in outcomes for d in outcome.dead])
            conn.execute(
                f"INSERT INTO {self._s}.consumer_offsets (group_name, partition, next_offset)"
                " SELECT %s, p, o FROM unnest(%s::int[], %s::bigint[]) AS n(p, o) ON CONFLICT (group_name,"
                " partition) DO UPDATE SET next_offset = EXCLUDED.next_offset".encode(),
                [self._group, partitions, [outcome.next_offset for outcome in outcomes]],
            )
            notify(conn, channel(self.namespace, "command-results"))
        return published

    def close(self) -> None:
        """Stop heartbeating the partitions still ours (so nobody waits on a gone processor), then disconnect."""
        self._wakeups.close()
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
