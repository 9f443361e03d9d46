"""Rebuild and verify (G6), and the dead-letter actions ``retry`` and ``skip``.

``rebuild`` folds the whole log into a scratch copy of a projection's read models
while queries and the live runner keep using the live copy, then swaps the copy in
atomically. ``verify`` folds the log into a scratch copy up to the live checkpoints
and lists the rows that differ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..domain.records import StoredEvent
from .errors import CheckpointMoved, NotFound
from .ports import DeadLetterEntry, EventFeed, ProgressSink, ReadModelSession, ReadModelStore
from .projection import Fact
from .runner import ProjectionRunner

ProgressFactory = Callable[[str, int], ProgressSink]
"""Makes a progress sink from a label and a total."""

REBUILD_BATCH = 5000
THREADS = 4


class SharedSink:
    """A progress sink safe to advance from several threads."""

    def __init__(self, sink: ProgressSink) -> None:
        self._sink, self._lock = sink, threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._sink.advance(n)

    def done(self) -> None:
        self._sink.done()


def replay(copy: ReadModelStore, feed: EventFeed, targets: Mapping[int, int], sink: ProgressSink) -> int:
    """Apply every partition of ``copy`` up to ``targets``, partitions in parallel threads; return the events read."""
    shared = SharedSink(sink)

    def one(partition: int) -> int:
        runner = ProjectionRunner(copy, feed, batch_size=REBUILD_BATCH)
        return runner.catch_up({partition: targets[partition]}, shared)

    with ThreadPoolExecutor(max_workers=max(1, min(THREADS, len(targets)))) as pool:
        return sum(pool.map(one, sorted(targets)))


def end_offsets(feed: EventFeed) -> dict[int, int]:
    """The end offset of every partition."""
    return {p: feed.end_offset(p) for p in range(feed.partitions)}


def rebuild(live: ReadModelStore, feed: EventFeed, progress: ProgressFactory) -> int:
    """Build the projection afresh from offset 0 and swap it in; return the events read."""
    copy = live.scratch_copy("rebuild")
    try:
        copy.install(feed.partitions)
        ends = end_offsets(feed)
        sink = progress(f"rebuild {live.projection.name}", sum(ends.values()))
        read = replay(copy, feed, ends, sink)
        read += replay(copy, feed, end_offsets(feed), sink)  # what was appended meanwhile
        sink.done()
        live.swap_in(copy)
    except BaseException:
        copy.discard()
        raise
    return read


def verify(live: ReadModelStore, feed: EventFeed, progress: ProgressFactory, limit: int = 20) -> list[str]:
    """Fold the log into a scratch copy up to the live checkpoints and return the differences."""
    copy = live.scratch_copy("verify")
    try:
        copy.install(feed.partitions)
        targets = live.checkpoints()
        sink = progress(f"verify {live.projection.name}", sum(targets.values()))
        for _ in range(10):
            replay(copy, feed, targets, sink)
            try:
                drift = live.diff(copy, limit)
            except CheckpointMoved:
                targets = live.checkpoints()  # the live runner moved on: catch the copy up to it
                continue
            sink.done()
            return drift
        raise CheckpointMoved(f"the live checkpoints of {live.projection.name} kept moving; try again")
    finally:
        copy.discard()


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """What a retry did for one aggregate."""

    aggregate_id: str
    retried: int
    skipped: int
    still_open: int
    error: str | None = None


def retry(store: ReadModelStore, feed: EventFeed, aggregate_id: str, skip_first: bool = False) -> RetryOutcome:
    """Apply an aggregate's dead letters in order (after skipping the first, if asked) until one fails again."""
    found = store.dead_letters(1, aggregate_id=aggregate_id)
    if not found:
        raise NotFound(f"no open dead letter of {aggregate_id!r} in projection {store.projection.name!r}")
    with store.session(found[0].dead.partition, None) as session:
        letters = session.open_letters(aggregate_id)
        skipped = letters[:1] if skip_first else []
        session.resolve([e.seq for e in skipped], "skipped")
        done, error = apply_letters(session, store, feed, letters[len(skipped) :])
        session.resolve(done, "retried")
    return RetryOutcome(aggregate_id, len(done), len(skipped), len(letters) - len(skipped) - len(done), error)


def apply_letters(
    session: ReadModelSession, store: ReadModelStore, feed: EventFeed, letters: list[DeadLetterEntry]
) -> tuple[list[int], str | None]:
    """Apply the events of ``letters`` in order; stop at the first that fails. Return the applied seqs."""
    done: list[int] = []
    for entry in letters:
        try:
            stored = event_at(feed, entry)
            session.apply(store.projection.handle(Fact(stored, feed.decode)))
        except Exception as e:  # noqa: BLE001 - the letter stays open with its reason
            return done, f"{type(e).__name__}: {e}"
        done.append(entry.seq)
    return done, None


def event_at(feed: EventFeed, entry: DeadLetterEntry) -> StoredEvent:
    """The event a dead letter holds, read back from the log."""
    dead = entry.dead
    found = feed.read(dead.partition, dead.offset, 1)
    if not found or (found[0].aggregate_id, found[0].version) != (dead.aggregate_id, dead.version):
        raise NotFound(f"event {dead.aggregate_id} v{dead.version} is not at p{dead.partition}@{dead.offset}")
    return found[0]
