"""The processor's side of the Kafka command bus: a member of the processor group on ``<ns>.commands``.

It returns records only of partitions it claimed through the event log (fencing zombies), and
commits only through transactions on those partitions' writers: events, results, dead letters
and the input offset together. Transactions of different partitions run at the same time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ...commands.ports import Codec, CommandRecord, CommandStream, PartitionOutcome
from ...commands.results import CommandResult, accepted
from ...domain.errors import ConcurrencyConflict, LogError, WriterFenced
from ...domain.records import NewEvent, Position, StoredEvent
from .bus import JOIN_TIMEOUT_S, POLL_LIMIT, dead_letter_record, result_record
from .client import Connect, GroupTimeouts, KafkaClient, TransactionalWriter
from .cluster import Cluster
from .log import COMMIT_TIMEOUT_S, KafkaEventLog
from .partitions import now_ms

log = logging.getLogger(__name__)
Transacted = tuple[list[CommandResult], list[StoredEvent]]
Prepared = tuple[PartitionOutcome, list[NewEvent], TransactionalWriter]
Answers = list[list[CommandResult] | LogError]


class KafkaCommandStream(CommandStream):
    """The processor's side: a member of the processor group on ``<ns>.commands``. It returns records only
    of partitions it claimed through ``log``, and commits only through transactions on their writers."""

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        log: KafkaEventLog,
        codec: Codec,
        group: str | None = None,
        session_timeout_ms: int = 6000,
        heartbeat_interval_ms: int = 1000,
        max_poll_interval_ms: int = 30_000,
        client: KafkaClient | None = None,
        *,
        connect: Connect,
    ) -> None:
        self.namespace = namespace
        self.group = group or f"{namespace}.processor"
        self._log = log
        self._codec = codec
        self._topics = log.topics
        self._callbacks: list[Callable[[frozenset[int]], None]] = []
        self._claimed: set[int] = set()
        self._unclaimed: set[int] = set()  # assigned, not claimed yet (or the claim failed): claimed in poll
        self._lost: set[int] = set()  # revoked, writer not released yet
        self._committed: dict[int, int] = {}
        self._next: dict[int, int] = {}
        self._joined = False
        self._pool: ThreadPoolExecutor | None = None
        self._cluster = Cluster(connect, bootstrap, client)
        timeouts = GroupTimeouts(session_timeout_ms, heartbeat_interval_ms, max_poll_interval_ms)
        wait = self._cluster.broker.follow_wait_ms
        self._reader = self._cluster.client.group_reader(
            self._topics.commands, self.group, self._assigned, self._revoked, timeouts, wait
        )

    def on_reassign(self, callback: Callable[[frozenset[int]], None]) -> None:
        self._callbacks.append(callback)

    def poll(self, timeout_s: float) -> list[CommandRecord]:
        """The next records of claimed partitions; the first call waits until the group assigned partitions."""
        records = self._reader.poll(timeout_s, POLL_LIMIT)
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not self._joined and time.monotonic() < deadline:
            records += self._reader.poll(0.1, POLL_LIMIT)
        fresh = self._settle()
        owned: list[CommandRecord] = []
        for r in records:
            expected = self._next.get(r.partition)
            if expected is None or r.offset < expected or r.partition in fresh:
                continue  # not claimed, fetched before a rewind, or fetched before the claim
            self._next[r.partition] = r.offset + 1
            key = None if r.key is None else r.key.decode(errors="replace")
            owned.append(CommandRecord(r.partition, r.offset, key, r.value, r.headers))
        return owned

    def commit(self, outcome: PartitionOutcome) -> list[CommandResult]:
        (done,) = self.commit_many([outcome])
        if isinstance(done, LogError):
            raise done
        return done

    def commit_many(self, outcomes: Sequence[PartitionOutcome]) -> Answers:
        """Run the partitions' transactions at the same time (each partition has its own writer). The
        log's lock is held throughout, so a reader of an owned partition waits until the commit is in
        the index (read-your-writes); workers only do I/O, and never touch the index or the consumer."""
        with self._log.lock:
            prepared = [self._prepare(o) for o in outcomes]
            if len(prepared) > 1:
                done = list(self._workers().map(self._transact_or_error, prepared))
            else:
                done = [self._transact_or_error(p) for p in prepared]
            return self._record(outcomes, [isinstance(p, Exception) for p in prepared], done)

    def _record(
        self, outcomes: Sequence[PartitionOutcome], refused: Sequence[bool], done: Sequence[Transacted | Exception]
    ) -> Answers:
        answers: Answers = []
        unexpected: Exception | None = None
        for outcome, unwritten, result in zip(outcomes, refused, done, strict=True):
            if isinstance(result, Exception):
                self._failed(outcome.partition, result, unwritten)
                answers.append(result if isinstance(result, LogError) else LogError(repr(result)))
                unexpected = unexpected or (None if isinstance(result, LogError) else result)
                continue
            self._log.record_appended(result[1])
            self._committed[outcome.partition] = outcome.next_offset
            answers.append(result[0])
        if unexpected is not None:  # a bug, not a broker error: surface it once every commit is recorded
            raise unexpected
        return answers

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._log.partitions, thread_name_prefix="txn")
        return self._pool

    def _prepare(self, outcome: PartitionOutcome) -> Prepared | Exception:
        """Check ownership and versions against the index (under the log's lock, in this thread)."""
        try:
            if outcome.partition not in self._claimed:
                raise WriterFenced(f"partition {outcome.partition} of {self._topics.commands} is not owned")
            events = [e for _, _, batch in outcome.accepted for e in batch]
            self._log.validate(events)
            return outcome, events, self._log.writer(outcome.partition)
        except Exception as e:  # handed back to _record, which cleans up
            return e

    def _transact_or_error(self, prepared: Prepared | Exception) -> Transacted | Exception:
        if isinstance(prepared, Exception):
            return prepared
        try:
            return self._transact(*prepared)
        except Exception as e:  # handed back to _record, which cleans up in the polling thread
            return e

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        owned = self._claimed | self._lost  # closing the reader revokes (and forgets) the claimed partitions
        self._reader.close()
        for partition in owned:
            self._log.release(partition)
        self._claimed.clear()
        self._cluster.close()

    def _transact(self, outcome: PartitionOutcome, events: list[NewEvent], writer: TransactionalWriter) -> Transacted:
        """One transaction: events (waiting for their offsets), results, dead letters, input offset."""
        partition, at = outcome.partition, now_ms()
        records = [self._log.record(e, at) for e in events]
        if any(r.partition != partition for r in records):
            raise ConcurrencyConflict(f"an accepted event of partition {partition} belongs to another partition")
        writer.begin()
        offsets = writer.send(records) if records else []
        stored = [StoredEvent(e, Position(partition, o), at) for e, o in zip(events, offsets, strict=True)]
        results, start = [], 0
        for command_id, aggregate_id, batch in outcome.accepted:
            results.append(accepted(command_id, aggregate_id, stored[start : start + len(batch)]))
            start += len(batch)
        results.extend(outcome.answered)
        topics = self._topics
        writer.send_later(
            [result_record(topics.results, partition, r, at) for r in results]
            + [dead_letter_record(topics.dlq, partition, d, at) for d in outcome.dead]
        )
        writer.send_offsets(self._reader, topics.commands, {partition: outcome.next_offset}, COMMIT_TIMEOUT_S)
        writer.commit(COMMIT_TIMEOUT_S)
        return results, stored

    def _failed(self, partition: int, error: Exception, unwritten: bool) -> None:
        """Abort (or give up the partition) if a transaction was begun, and deliver its records again
        from the last committed offset."""
        if not unwritten and not isinstance(error, ConcurrencyConflict):  # a conflict comes before any write
            self._log.abandon(partition, error)
        self._rewind(partition)
        if not self._log.owns(partition):
            self._claimed.discard(partition)
            self._next.pop(partition, None)
            self._reader.pause([partition])

    def rewind(self) -> None:
        for partition in self._claimed:
            self._rewind(partition)

    def _rewind(self, partition: int) -> None:
        offset = self._committed.get(partition, 0)
        self._reader.seek(partition, offset)
        self._next[partition] = offset

    def _assigned(self, partitions: frozenset[int]) -> None:
        """Runs on the client's IO thread inside poll: only note the change (claims block)."""
        self._joined = True
        self._unclaimed |= partitions - self._claimed

    def _revoked(self, partitions: frozenset[int]) -> None:
        """Runs on the client's IO thread inside poll: stop using the partitions at once."""
        self._lost |= partitions & self._claimed
        self._claimed -= partitions
        self._unclaimed -= partitions

    def _settle(self) -> frozenset[int]:
        """Release revoked partitions and claim assigned ones (after poll); the partitions claimed now."""
        for partition in self._lost - self._claimed - self._unclaimed:
            self._log.release(partition)
            self._next.pop(partition, None)
        self._lost.clear()
        fresh = frozenset(self._unclaimed)
        self._claim(fresh)
        return fresh

    def _claim(self, partitions: frozenset[int]) -> None:
        """Claim newly assigned partitions (fencing zombies), then read them from the committed offsets."""
        if not partitions:
            return
        try:
            self._log.claim(partitions)
            committed = {p: self._reader.committed(p) or 0 for p in partitions}
        except LogError as e:
            log.warning("cannot claim partitions %s yet: %s", sorted(partitions), e)
            self._reader.pause(sorted(partitions))
            self._unclaimed |= partitions
            return
        self._committed.update(committed)
        for partition in partitions:
            self._rewind(partition)
        self._reader.resume(sorted(partitions))
        self._claimed |= partitions
        self._unclaimed -= partitions
        for callback in self._callbacks:
            callback(frozenset(self._claimed))
