"""Saving a Kafka log's partition index: what is saved is what a fresh reader of the log would find.

The index a log holds in memory is not always what a fresh reader finds: an owner adds its own
committed events without reading the log, so a record that landed in between (an aborted one of a
fenced writer, on a broker that shows those: ``../brokers.py``) is in the log but not in its memory. Saving that
memory would give restarted readers a different history than the log. So a checkpoint is made
by a second index, the verifier, that reads each partition from the last saved checkpoint to
the end, validating in log order like any reader; it saves that, and the log then drops from
memory the events below the new checkpoint.

The verifier must not miss what the log's own index holds: a broker that shows a committed
transaction's records only after a reader went past them (Tansu 0.6 does, now and then, under
load) would otherwise have a checkpoint saved past events that then no restarted reader finds.
So before saving a partition, every event the log holds in the range the verifier read must be
there, at its version, in the verifier too; if one is not, nothing of that partition is saved and
the verifier reads it again next time.

``Checkpointer.checkpoint`` runs every ``checkpoint_every`` events (in a background thread) and
when the log closes; one at a time.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable

from ....domain.errors import LogError
from ....domain.records import StoredEvent
from .indexed import IndexedPartitions
from .store import Checkpoint

log = logging.getLogger(__name__)
BACKGROUND_PAUSE_S = 0.05
"""In a background checkpoint, the verifier's pause after each 1,000 records: without it, reading
back 10,000 records competes with the processor for the interpreter and its p99 latency jumps
(measured on Tansu: 630-740 ms against 150-250 ms)."""


class Checkpointer:
    """Saves the partitions ``index`` has read, as the verifier (made on first use) reads them back."""

    def __init__(self, index: IndexedPartitions, make_verifier: Callable[[], IndexedPartitions]) -> None:
        self._index, self._make_verifier = index, make_verifier
        self._verifier: IndexedPartitions | None = None
        self._saving = threading.Lock()

    def in_background(self) -> None:
        """Start a checkpoint in a background thread, unless one is running."""
        if not self._saving.locked():
            threading.Thread(target=self.checkpoint, args=(True,), name="kafka-index-checkpoint", daemon=True).start()

    def checkpoint(self, background: bool = False) -> int:
        """Save every partition the index has read past its base, then drop the saved events from its memory;
        how many events were saved (0 without an index store). In the background the reading is paced."""
        if self._index.store is None:
            return 0
        with self._saving:
            with self._index.lock:
                due = [p for p in range(self._index.partitions) if self._index[p].next_offset > self._index[p].base]
            if not due:
                return 0
            try:
                saved = self._save(due, BACKGROUND_PAUSE_S if background else 0.0)
            except LogError as e:
                log.warning("the index of %s was not saved: %s", self._index.topic, e)
                return 0
            for partition, (checkpoint, _) in saved.items():
                self._forget(partition, checkpoint)
            return sum(count for _, count in saved.values())

    def close(self) -> None:
        """Save a last checkpoint and release the verifier."""
        self.checkpoint()
        with self._saving:
            if self._verifier is not None:
                self._verifier.close()
                self._verifier = None

    def _save(self, due: list[int], pause_s: float) -> dict[int, tuple[Checkpoint, int]]:
        """The verifier reads the partitions to their end and saves them: each checkpoint, and its events."""
        if self._verifier is None:
            self._verifier = self._make_verifier()
        self._verifier.pause_s = pause_s
        with self._verifier.lock:
            self._verifier.catch_up(due)
            for partition in due:
                if missed := self._missed(self._verifier, partition):
                    log.warning(
                        "the read-back of %s-%s missed %s events this log holds (first: %s v%s at offset %s):"
                        " not saving it now, it is read again at the next checkpoint",
                        *(self._index.topic, partition, len(missed), missed[0].aggregate_id),
                        *(missed[0].version, missed[0].position.offset),
                    )
                    self._verifier.restart(partition)
        return self._verifier.save()

    def _missed(self, verifier: IndexedPartitions, partition: int) -> list[StoredEvent]:
        """The events the log's index holds in the offsets the verifier has just read that the verifier lacks."""
        with self._index.lock:
            held = self._index[partition]
            read = verifier[partition]
            first = bisect_left(held.offsets, read.saved)
            last = bisect_left(held.offsets, min(held.next_offset, read.next_offset))
            mine = held.events[first:last]
        verifier.know(s.aggregate_id for s in mine)
        return [s for s in mine if read.version(s.aggregate_id) < s.version]

    def _forget(self, partition: int, checkpoint: Checkpoint) -> None:
        """Drop the index's events below the checkpoint (no further than it has read itself)."""
        with self._index.lock:
            index = self._index[partition]
            below = min(checkpoint.next_offset, index.next_offset)
            if below > index.base:
                index.forget_below(below)
