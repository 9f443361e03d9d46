"""The read side of the Kafka log: every partition's validated index, caught up on demand.

Each partition of ``<ns>.events`` is read in log order into a ``PartitionIndex`` (G8: the first
record of an (aggregate, version) wins), up to its end as the broker profile finds it
(``../brokers.py``). With an index store (``store.py``) the index is saved every
``checkpoint_every`` events and on close, and then dropped from memory; a partition never read
before starts at its saved checkpoint, so only the records after it are read. Events below the
checkpoint are located in PostgreSQL and fetched by offset (``saved.py``). Without a store,
every partition is read from offset 0 and held in memory whole. Saving is ``checkpoints.py``'s.
Callers hold ``lock`` around every method but ``save`` and ``close``.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping

from ....domain.errors import InvalidInput, LogError
from ....domain.records import Position, StoredEvent
from ...avro.codec import decode_envelope
from ...common.partitioning import partition_for
from ..brokers import BrokerProfile, is_marker
from ..client import Incoming, KafkaClient
from ..partitions import PartitionIndex
from .saved import SavedEvents
from .store import Checkpoint, IndexStore

log = logging.getLogger(__name__)
CHUNK = 1000
Range = tuple[int, int | None]
"""First and last version (None: the latest)."""


class IndexedPartitions:
    """The index of each partition of one events topic, and the saved checkpoints it starts from."""

    def __init__(
        self,
        client: KafkaClient,
        broker: BrokerProfile,
        topic: str,
        partitions: int,
        saved: SavedEvents | None,
        checkpoint_every: int = 0,
    ) -> None:
        self.topic, self.lock = topic, threading.RLock()
        self._client, self._broker, self._reader, self._saved = client, broker, client.reader(), saved
        self._index = [PartitionIndex() for _ in range(partitions)]
        self._every, self._unsaved = checkpoint_every, 0
        self.pause_s = 0.0
        """A pause after each chunk read (a background reader leaves the CPU to the process's real work)."""
        self.on_due: Callable[[], None] = lambda: None
        """Called (holding ``lock``) once ``checkpoint_every`` events were added since it was last called."""
        self._started: set[int] = set()  # partitions whose saved checkpoint was looked at
        self._unsaved_partitions: set[int] = set()  # their saved index does not match the topic: never saved
        self.records_read = 0
        """Records read while catching up partitions (events, markers and skipped ones)."""

    def __getitem__(self, partition: int) -> PartitionIndex:
        return self._index[partition]

    def catch_up(self, partitions: list[int]) -> None:
        """Read ``partitions`` from where the index stopped to their current end, validating each record."""
        saved = {p: self._saved_checkpoint(p) for p in partitions}  # before the ends, which then lie past them
        ends = self._broker.end_offsets(self._client, self.topic, partitions)
        for p, checkpoint in saved.items():
            if checkpoint is not None:
                self._start(p, checkpoint, ends[p])
        self._reader.assign(self.topic, partitions)
        for p in partitions:
            self._reader.seek(p, self._index[p].next_offset)
        chunk: list[Incoming] = []
        for record in self._broker.read_to_end(self._client, self._reader, self.topic, ends):
            chunk.append(record)
            if len(chunk) == CHUNK:
                self._add_records(chunk)
                chunk = []
                time.sleep(self.pause_s)
        self._add_records(chunk)
        for p in partitions:
            self._index[p].next_offset = max(self._index[p].next_offset, self._reader.position(p))
        self._save_when_due()

    def appended(self, stored: Iterable[StoredEvent]) -> None:
        """Add the events of a committed transaction of ours; save a checkpoint in the background when due."""
        for s in stored:
            index = self._index[s.position.partition]
            index.add(s)
            index.next_offset = max(index.next_offset, s.position.offset + 1)
            self._unsaved += 1
        self._save_when_due()

    def _save_when_due(self) -> None:
        if self._saved is not None and self._every and self._unsaved >= self._every:
            self._unsaved = 0
            self.on_due()

    def know(self, aggregate_ids: Iterable[str]) -> None:
        """Look up the versions below the checkpoint of the aggregates not looked up yet."""
        by_partition: dict[int, set[str]] = {}
        for agg in aggregate_ids:
            by_partition.setdefault(partition_for(agg, len(self._index)), set()).add(agg)
        for p, aggs in by_partition.items():
            self._know_in(p, aggs)

    def _know_in(self, partition: int, aggregate_ids: set[str]) -> None:
        index = self._index[partition]
        if unknown := index.unknown(aggregate_ids):
            found = self._store_of(partition).store.versions(unknown, index.base)
            index.prior.update({agg: found.get(agg, 0) for agg in unknown})

    def histories(self, wanted: Mapping[str, Range]) -> dict[str, list[StoredEvent]]:
        """Each aggregate's events between two versions, from below the checkpoint and from memory."""
        older: dict[int, dict[str, tuple[int, int]]] = {}
        newer: dict[str, list[StoredEvent]] = {}
        self.know(wanted)
        for agg, (first, last) in wanted.items():
            p = partition_for(agg, len(self._index))
            prior, tail = self._index[p].prior_version(agg), self._index[p].by_aggregate.get(agg, [])
            first, last = max(first, 1), prior + len(tail) if last is None else last
            if first <= min(prior, last):
                older.setdefault(p, {})[agg] = (first, min(prior, last))
            newer[agg] = tail[max(first - prior, 1) - 1 : max(last - prior, 0)]
        found: dict[str, list[StoredEvent]] = {agg: [] for agg in wanted}
        for p, ranges in older.items():
            found.update(self._store_of(p).between(p, ranges))
        return {agg: found[agg] + newer[agg] for agg in wanted}

    def partition_events(self, partition: int, from_offset: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` events of ``partition`` from ``from_offset`` on."""
        index, older = self._index[partition], []
        if from_offset < index.base:
            saved = self._store_of(partition)
            older = saved.events(partition, saved.store.partition_from(partition, from_offset, index.base, limit))
        start = bisect_left(index.offsets, from_offset)
        return older + index.events[start : start + limit - len(older)]

    def commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        """For (aggregate id, command id) pairs, the events of each command that has any."""
        self.know(agg for agg, _ in keys)
        older = self._older_commands([k for k in keys if self._of(k[0]).prior_version(k[0])])
        found: dict[str, list[StoredEvent]] = {}
        for key in keys:
            events = older.get(key, []) + self._of(key[0]).by_command.get(key, [])
            if events:
                found.setdefault(key[1], []).extend(events)
        return found

    @property
    def partitions(self) -> int:
        return len(self._index)

    @property
    def store(self) -> IndexStore | None:
        return None if self._saved is None else self._saved.store

    def save(self) -> dict[int, tuple[Checkpoint, int]]:
        """Save what this index read of each partition and drop it from memory; each checkpoint saved and
        its events. Only for an index that read every record it holds from the log (never ``appended``)."""
        done: dict[int, tuple[Checkpoint, int]] = {}
        if self._saved is None:
            return done
        for partition, index in enumerate(self._index):
            with self.lock:
                events, checkpoint = index.unsaved()
            if checkpoint is None or partition in self._unsaved_partitions:
                continue
            try:
                self._saved.store.save(partition, events, checkpoint)
            except LogError as e:
                log.warning("the index of %s-%s was not saved: %s", self.topic, partition, e)
                continue
            with self.lock:
                index.saved, index.last = max(index.saved, checkpoint.next_offset), checkpoint
                index.forget_below(checkpoint.next_offset)
            done[partition] = (checkpoint, len(events))
        return done

    def restart(self, partition: int) -> None:
        """Forget what was read of ``partition`` since its last checkpoint: the next catch-up reads it again."""
        self._index[partition] = PartitionIndex(self._index[partition].last)

    def close(self) -> None:
        """Release the readers (not the store)."""
        with self.lock:
            self._reader.close()
            if self._saved is not None:
                self._saved.close()

    def _of(self, aggregate_id: str) -> PartitionIndex:
        return self._index[partition_for(aggregate_id, len(self._index))]

    def _store_of(self, partition: int) -> SavedEvents:
        assert self._saved is not None, f"partition {partition} started from a checkpoint, so there is a store"
        return self._saved

    def _older_commands(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[StoredEvent]]:
        """The events below the checkpoint that each (aggregate, command) caused."""
        if not keys or self._saved is None:
            return {}
        found: dict[tuple[str, str], list[StoredEvent]] = {}
        for key, places in self._saved.store.commands(keys).items():
            p = partition_for(key[0], len(self._index))
            below = [at for at in places if at.offset < self._index[p].base]
            if below:
                found[key] = self._saved.events(p, below)
        return found

    def _saved_checkpoint(self, partition: int) -> Checkpoint | None:
        """The saved checkpoint of a partition never read yet, if there is one to start at."""
        if self._saved is None or partition in self._started or self._index[partition].next_offset:
            return None
        self._started.add(partition)
        try:
            return self._saved.store.checkpoint(partition)
        except LogError as e:
            log.warning("no saved index of %s-%s, reading it from offset 0: %s", self.topic, partition, e)
            return None

    def _start(self, partition: int, checkpoint: Checkpoint, end: int) -> None:
        """Start the partition at ``checkpoint`` unless it does not match the topic: then read it from offset
        0 and never save it (other processes may be using the saved rows)."""
        assert self._saved is not None, "there is a checkpoint, so there is a store"
        try:
            if checkpoint.last_offset < end and self._saved.matches(partition, checkpoint):
                self._index[partition] = PartitionIndex(checkpoint)
                return
        except LogError as e:
            log.warning("the saved index of %s-%s cannot be checked, reading from 0: %s", self.topic, partition, e)
            return
        self._unsaved_partitions.add(partition)
        log.error(
            "the saved index of %s-%s does not match the topic (was it recreated?): reading it from offset 0;"
            " once no process uses it, delete it: %s",
            self.topic,
            partition,
            self._saved.store.removal_hint(partition),
        )

    def _add_records(self, records: list[Incoming]) -> None:
        """Add the events among ``records`` to their partitions' index (markers and unreadable ones skipped)."""
        decoded = [(record, self._decoded(record)) for record in records]
        by_partition: dict[int, set[str]] = {}
        for record, stored in decoded:
            if stored is not None:
                by_partition.setdefault(record.partition, set()).add(stored.aggregate_id)
        for partition, aggs in by_partition.items():  # before anything moves: a failure here reads them again
            self._know_in(partition, aggs)
        for record, stored in decoded:
            self._index[record.partition].next_offset = record.offset + 1
            if stored is not None:
                self._unsaved += self._index[record.partition].add(stored)
        self.records_read += len(records)

    def _decoded(self, record: Incoming) -> StoredEvent | None:
        """The event in ``record``, or None for a marker or an unreadable record."""
        if is_marker(record) or not record.value:
            return None
        try:
            event = decode_envelope(record.value)
        except InvalidInput as e:
            log.warning("skipping unreadable record %s-%s: %s", self.topic, record.offset, e)
            return None
        return StoredEvent(event, Position(record.partition, record.offset), record.timestamp_ms)
