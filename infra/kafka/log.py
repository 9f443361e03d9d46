"""The Kafka event log: topic ``<ns>.events``, key = aggregate id, one transactional writer per partition.

Offsets are Kafka's: strictly increasing per partition, with gaps (transaction markers and,
under the ``tansu`` broker profile, catch-up markers take offsets). ``end_offset`` is one past the
last event. Reads go through an index per partition (``index/indexed.py``), built by reading it
in log order and validating every record (G8): the first record of an (aggregate, version) wins
and a version that is not its aggregate's next one is skipped, so the log reads the same
everywhere even on a broker that shows aborted transactions. The owner of a partition (the
writer that claimed it, fencing the one before) trusts its own index; everyone else catches the
partition up to its end before each read, the way the broker profile (``brokers.py``) finds it.
With an index store the index is saved in PostgreSQL now and then, so a restart reads only what
came after the last checkpoint.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

from ...commands.ports import Codec, EventLog
from ...commands.versions import check_next_versions
from ...domain.errors import LogError, WriterFenced
from ...domain.records import NewEvent, Position, StoredEvent
from ..avro.codec import encode_envelope, record_headers
from ..common.partitioning import partition_for
from .client import Connect, KafkaClient, Outgoing, TransactionalWriter
from .cluster import Cluster
from .index.checkpoints import Checkpointer
from .index.indexed import IndexedPartitions
from .index.saved import SavedEvents
from .index.store import IndexStore
from .partitions import now_ms, parallel
from .tail import IdleReaders

COMMIT_TIMEOUT_S = 10.0
LAZY_CLAIM_ATTEMPTS = 8


class KafkaEventLog(EventLog):
    """The event log on Kafka. The command stream runs its own transactions on this log's writers:
    under ``lock``, ``validate`` the events, write ``record``s with ``writer(p)``, and after the commit
    ``record_appended`` the stored events (or ``abandon`` the partition if the transaction failed)."""

    def __init__(
        self,
        bootstrap: str,
        namespace: str,
        codec: Codec,
        partitions: int = 4,
        client: KafkaClient | None = None,
        index_store: IndexStore | None = None,
        checkpoint_every: int = 10_000,
        *,
        connect: Connect,
    ) -> None:
        self.namespace, self.codec = namespace, codec
        self._cluster = Cluster(connect, bootstrap, client)
        self._client, self._broker = self._cluster.client, self._cluster.broker
        self.topics, self._partitions = self._cluster.topics(namespace, partitions)
        self._store = index_store
        self._index = self._indexed(checkpoint_every)
        self._checkpointer = Checkpointer(self._index, lambda: self._indexed(0))
        self._index.on_due = self._checkpointer.in_background
        self._writers: dict[int, TransactionalWriter] = {}
        self._explicit: set[int] = set()  # claimed with claim(): never re-claimed behind the caller's back
        self._idle = IdleReaders(self._client, self.topics.events)
        self.lock = self._index.lock

    @property
    def partitions(self) -> int:
        return self._partitions

    def partition_for(self, aggregate_id: str) -> int:
        return partition_for(aggregate_id, self._partitions)

    @property
    def records_read(self) -> int:
        """Records read so far to catch partitions up (a log started at saved checkpoints reads only the tail)."""
        return self._index.records_read

    def owns(self, partition: int) -> bool:
        """Whether this log holds the writer of ``partition`` (it may not know yet that it was fenced)."""
        return partition in self._writers

    def writer(self, partition: int) -> TransactionalWriter:
        """The transactional writer of an owned partition; WriterFenced if this log does not own it."""
        found = self._writers.get(partition)
        if found is None:
            raise WriterFenced(f"partition {partition} of {self.topics.events} is not owned by this log")
        return found

    def validate(self, events: Sequence[NewEvent]) -> None:
        """Raise ConcurrencyConflict unless each event is its aggregate's next version (batch included).
        Checks the index, which is authoritative for owned partitions only."""
        self._index.know(e.aggregate_id for e in events)
        check_next_versions(events, lambda agg: self._index[self.partition_for(agg)].version(agg))

    def record(self, event: NewEvent, timestamp_ms: int) -> Outgoing:
        """The record of ``event`` in its partition of ``<ns>.events``."""
        partition = self.partition_for(event.aggregate_id)
        key = event.aggregate_id.encode()
        return Outgoing(self.topics.events, partition, encode_envelope(event), key, record_headers(event), timestamp_ms)

    def record_appended(self, stored: Iterable[StoredEvent]) -> None:
        """Add events of a committed transaction of ours to the index."""
        self._index.appended(stored)
        self._idle.grew()

    def checkpoint(self) -> int:
        return self._checkpointer.checkpoint()

    def _indexed(self, checkpoint_every: int) -> IndexedPartitions:
        """An index of the events topic, reading and saving checkpoints through the index store if any."""
        saved = SavedEvents(self._store, self._client, self.topics.events) if self._store else None
        events = self.topics.events
        return IndexedPartitions(self._client, self._broker, events, self._partitions, saved, checkpoint_every)

    def abandon(self, partition: int, error: BaseException) -> None:
        """After a failed transaction: abort it (and on a broker that shows aborted records, which readers then
        take as written, re-read the partition), or give up the partition if it cannot be aborted."""
        with self.lock:
            if partition not in self._writers:
                return
            if isinstance(error, WriterFenced):
                self._lose(partition)
                return
            try:
                self._writers[partition].abort(COMMIT_TIMEOUT_S)
                if self._broker.shows_aborted_records:
                    self._index.catch_up([partition])
            except LogError:
                self._lose(partition)

    def release(self, partition: int) -> None:
        """Stop writing ``partition`` (after a rebalance took it away)."""
        with self.lock:
            self._lose(partition)
            self._explicit.discard(partition)

    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        if not events:
            return []
        placed: dict[int, list[int]] = {}
        for i, e in enumerate(events):
            placed.setdefault(self.partition_for(e.aggregate_id), []).append(i)
        stored: list[StoredEvent | None] = [None] * len(events)
        with self.lock:
            self._claim_lazily(placed)
            self.validate(events)
            for partition, indices in placed.items():
                written = self._write_retrying(partition, [events[i] for i in indices])
                for i, s in zip(indices, written, strict=True):
                    stored[i] = s
        return [s for s in stored if s is not None]

    def read_aggregate(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        with self.lock:
            self._sync([self.partition_for(aggregate_id)])
            return self._index.histories({aggregate_id: (from_version, to_version)})[aggregate_id]

    def read_partition(self, partition: int, from_offset: int, limit: int = 1000) -> list[StoredEvent]:
        """As the port says; a reader that has read every partition it follows to the end is held on a fetch
        until a record comes (at most ``tail.IDLE_WAIT_S``) instead of getting its empty answer at once."""
        followed = self._idle.asked(partition, from_offset)
        found = self._events_from(partition, from_offset, limit)
        if not found and limit > 0 and self._waited(followed):
            found = self._events_from(partition, from_offset, limit)
        return found

    def _events_from(self, partition: int, from_offset: int, limit: int) -> list[StoredEvent]:
        with self.lock:
            self._sync([partition])
            return self._index.partition_events(partition, from_offset, max(limit, 0))

    def _waited(self, followed: Mapping[int, int]) -> bool:
        """Hold a reader until a partition it follows has a record past the index (``tail.py``), unless one already
        has events it has not asked for; whether one came (and was caught up)."""
        with self.lock:
            if any(self._index[p].end > o for p, o in followed.items()):
                return False
            others = {p: self._index[p].next_offset for p in followed if p not in self._writers}
            appended = self._idle.appended
        if not self._idle.wait(others, appended):
            return False
        with self.lock:
            self._sync(others)
        return True

    def end_offset(self, partition: int) -> int:
        with self.lock:
            self._sync([partition])
            return self._index[partition].end

    def find_command(self, aggregate_id: str, command_id: str) -> list[StoredEvent]:
        return self.find_commands([(aggregate_id, command_id)]).get(command_id, [])

    def find_commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        with self.lock:
            self._sync(self.partition_for(agg) for agg, _ in keys)
            return self._index.commands(keys)

    def read_aggregates(self, aggregate_ids: Collection[str]) -> dict[str, list[StoredEvent]]:
        return self.read_aggregates_from({agg: 1 for agg in aggregate_ids})

    def read_aggregates_from(self, from_versions: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
        with self.lock:
            self._sync(self.partition_for(agg) for agg in from_versions)
            return self._index.histories({agg: (first, None) for agg, first in from_versions.items()})

    def claim(self, partitions: Collection[int]) -> None:
        with self.lock:
            self._claim(partitions)
            self._explicit.update(partitions)

    def close(self) -> None:
        with self.lock:
            for partition in list(self._writers):
                self._lose(partition)
        self._checkpointer.close()
        self._idle.close()
        self._index.close()
        if self._store is not None:
            self._store.close()
        with self.lock:
            self._cluster.close()

    def _claim_lazily(self, placed: Collection[int]) -> None:
        lost = sorted(p for p in placed if p in self._explicit and p not in self._writers)
        if lost:
            raise WriterFenced(f"partitions {lost} of {self.topics.events} were claimed by another writer")
        self._claim([p for p in placed if p not in self._writers])

    def _claim(self, partitions: Collection[int]) -> None:
        """Take over the writers of ``partitions`` (fencing their previous owners), then catch up."""
        wanted = sorted(set(partitions))
        if not wanted:
            return
        writers = {p: self._broker.writer(self._client, f"{self.namespace}.writer-p{p}") for p in wanted}
        try:
            parallel([w.init for w in writers.values()])
            self._index.catch_up(wanted)
        except BaseException:
            for w in writers.values():
                w.close()
            raise
        for p in wanted:
            self._lose(p)
        self._writers.update(writers)

    def _lose(self, partition: int) -> None:
        writer = self._writers.pop(partition, None)
        if writer is not None:
            writer.close()

    def _write_retrying(self, partition: int, events: list[NewEvent]) -> list[StoredEvent]:
        """Write ``events`` in one transaction; a lazily claimed partition is claimed again if fenced."""
        written: list[StoredEvent] = []
        for attempt in range(1, LAZY_CLAIM_ATTEMPTS + 1):
            try:
                return written + self._write(partition, events[len(written) :])
            except WriterFenced:
                if partition in self._explicit or attempt == LAZY_CLAIM_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))
                self._claim([partition])
                written = self._landed(events)
                self.validate(events[len(written) :])
        raise AssertionError("unreachable")

    def _landed(self, events: list[NewEvent]) -> list[StoredEvent]:
        """The leading ``events`` that readers take as written: records of our failed transaction that won their
        versions (its commit went through after all, or the broker shows aborted records)."""
        landed = []
        for e in events:
            found = self._index[self.partition_for(e.aggregate_id)].at_version(e.aggregate_id, e.version)
            if found is None or found.event != e:
                break
            landed.append(found)
        return landed

    def _write(self, partition: int, events: list[NewEvent]) -> list[StoredEvent]:
        writer, at = self.writer(partition), now_ms()
        records = [self.record(e, at) for e in events]
        try:
            writer.begin()
            offsets = writer.send(records)
            writer.commit(COMMIT_TIMEOUT_S)
        except Exception as e:
            self.abandon(partition, e)
            raise
        stored = [StoredEvent(e, Position(partition, o), at) for e, o in zip(events, offsets, strict=True)]
        self.record_appended(stored)
        return stored

    def _sync(self, partitions: Iterable[int]) -> None:
        stale = sorted({p for p in partitions if p not in self._writers})
        if stale:
            self._index.catch_up(stale)
