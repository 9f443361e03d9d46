"""The projection runner: per owned partition, read from the checkpoint and apply in batches.

Each batch is applied in one store session that first locks the partition's checkpoint
row and checks it is where this runner left it; changes, dead letters, handled
versions and the new checkpoint commit together (G5). So a crash at any point loses
or repeats nothing, and a worker that lost a partition (or whose read models were
swapped by a rebuild) gets CheckpointMoved instead of applying twice: it reloads the
checkpoints and carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping

from ..domain.errors import LogError
from .batch import Plan, apply_batch
from .errors import CheckpointMoved
from .ports import EventFeed, PartitionClaims, ProgressSink, ReadModelStore

log = logging.getLogger(__name__)
CLAIM_EVERY_S = 1.0
RETRY_S = 1.0


class ProjectionRunner:
    """Applies the event feed to one projection's store, for the partitions its claims own."""

    def __init__(
        self,
        store: ReadModelStore,
        feed: EventFeed,
        claims: PartitionClaims | None = None,
        batch_size: int = 2000,
    ) -> None:
        self.store, self.feed, self.claims = store, feed, claims
        self.batch_size = batch_size
        self.totals = Plan()
        self.moved = False
        """Set when a checkpoint was found moved (by another worker or a swap) and reloaded."""
        self._checkpoints: dict[int, int] | None = None

    @property
    def name(self) -> str:
        return self.store.projection.name

    def checkpoint(self, partition: int) -> int:
        """Where this runner will read ``partition`` next (loaded from the store on first use)."""
        if self._checkpoints is None:
            self._checkpoints = self.store.checkpoints()
        return self._checkpoints.get(partition, 0)

    def advance(self, partition: int, until: int | None = None) -> int:
        """Apply the next batch of ``partition`` (stopping before offset ``until``); return the events read."""
        start = self.checkpoint(partition)
        limit = self.batch_size if until is None else min(self.batch_size, until - start)
        events = self.feed.read(partition, start, limit) if limit > 0 else []
        if not events:
            return 0
        next_offset = events[-1].position.offset + 1
        try:
            with self.store.session(partition, start) as session:
                done = apply_batch(session, self.store.projection, events, self.feed.decode)
                session.advance(next_offset)
        except CheckpointMoved as e:
            log.info("projection %s: %s; reloading checkpoints", self.name, e)
            self._checkpoints, self.moved = None, True
            return 0
        self._count(done)
        assert self._checkpoints is not None
        self._checkpoints[partition] = next_offset
        return len(events)

    def _count(self, done: Plan) -> None:
        self.totals.applied += done.applied
        self.totals.skipped += done.skipped
        self.totals.dead.extend(done.dead[-100:])
        if done.dead:
            log.warning("projection %s: %d events dead-lettered", self.name, len(done.dead))

    def step(self, partitions: Collection[int]) -> int:
        """One batch on each of ``partitions``; return the events read."""
        return sum(self.advance(p) for p in sorted(partitions))

    def catch_up(self, targets: Mapping[int, int] | None = None, progress: ProgressSink | None = None) -> int:
        """Apply every partition up to ``targets`` (default: the current end offsets); return the events read."""
        ends = targets if targets is not None else self.end_offsets()
        read = 0
        for partition, end in sorted(ends.items()):
            while self.checkpoint(partition) < end:
                self.moved = False
                n = self.advance(partition, end)
                if n == 0 and not self.moved:
                    break  # the log has no more records below ``end`` (e.g. Kafka transaction markers)
                read += n
                if progress is not None:
                    progress.advance(n)
        return read

    def end_offsets(self) -> dict[int, int]:
        """The end offset of every partition of the feed."""
        return {p: self.feed.end_offset(p) for p in range(self.feed.partitions)}

    def lag(self) -> int:
        """Events in the log that this projection has not applied yet."""
        checkpoints = self.store.checkpoints()
        return sum(max(0, end - checkpoints.get(p, 0)) for p, end in self.end_offsets().items())

    def run(self, stop: threading.Event, idle_s: float = 0.05) -> None:
        """Claim partitions and apply them until ``stop`` is set; release them at the end."""
        if self.claims is None:
            raise ValueError("a runner without claims cannot run in a group; use catch_up")
        owned: frozenset[int] = frozenset()
        claimed_at = float("-inf")
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - claimed_at >= CLAIM_EVERY_S:
                        owned, claimed_at = self._reclaim(owned), time.monotonic()
                    if self.step(owned) == 0:
                        stop.wait(idle_s)
                except LogError as e:  # transient (database or broker away): back off, then resume
                    log.warning("projection %s: %s; retrying in %.0f s", self.name, e, RETRY_S)
                    self._checkpoints = None
                    stop.wait(RETRY_S)
        finally:
            self.claims.release()

    def _reclaim(self, owned: frozenset[int]) -> frozenset[int]:
        assert self.claims is not None
        now = self.claims.claim(self.feed.partitions)
        if now != owned:
            log.info("projection %s owns partitions %s", self.name, sorted(now))
            self._checkpoints = None  # a partition taken over resumes from the stored checkpoint
        return now
