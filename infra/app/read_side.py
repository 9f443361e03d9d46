"""The read side of one backbone: stores, runners, queries and maintenance of its projections.

Adapters arrive through the constructor (the stores, the queries, how to claim partitions);
``infra/bootstrap.py`` builds it for the configured technologies. Nothing here does I/O at
import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from ...domain.records import Position
from ...projections.errors import NotFound
from ...projections.maintenance import ProgressFactory, rebuild, verify
from ...projections.notices import NoticeSource
from ...projections.ports import EventFeed, PartitionClaims, ReadModelStore
from ...projections.projection import Registry
from ...projections.queries import ReadModelQueries
from ...projections.runner import ProjectionRunner
from ..common.progress import Progress

log = logging.getLogger(__name__)

Claims = Callable[[str, bool], PartitionClaims]
"""Partition claims of one projection: ``claims(projection, member)`` (a passer-by is no member)."""


def progress_line(label: str, total: int) -> Progress:
    """A progress line on stderr counting events."""
    return Progress(label, total, unit="events")


class ReadSide:
    """The projections of one namespace: their stores, runners, queries and maintenance."""

    def __init__(
        self,
        namespace: str,
        feed: EventFeed,
        registry: Registry,
        stores: Mapping[str, ReadModelStore],
        queries: ReadModelQueries,
        claims: Claims,
        close: Callable[[], None] = lambda: None,
        notices: NoticeSource | None = None,
    ) -> None:
        self.namespace, self.feed, self.registry = namespace, feed, registry
        self.stores, self.queries = dict(stores), queries
        self._claims, self._close = claims, close
        self.notices = notices
        """The stores' commit notices, for a gateway's waits (None: waits end at their timeouts)."""
        for store in self.stores.values():
            store.install(feed.partitions)

    def store(self, name: str) -> ReadModelStore:
        """The live store of projection ``name`` (UnknownProjection if there is none)."""
        self.registry.get(name)
        return self.stores[name]

    def runner(self, name: str, batch_size: int = 2000) -> ProjectionRunner:
        """A runner of ``name`` that claims its partitions in the worker group."""
        return ProjectionRunner(self.store(name), self.feed, self._claims(name, True), batch_size)

    def checked_positions(self, positions: Sequence[Position]) -> Sequence[Position]:
        """``positions``, or NotFound naming one the log has never had (no such partition, past the end)."""
        for p in positions:
            if p.partition >= self.feed.partitions or p.offset >= self.feed.end_offset(p.partition):
                raise NotFound(f"position {p.partition}:{p.offset} is not in the log: pass one a result gave")
        return positions

    def names(self, names: Sequence[str] | None = None) -> list[str]:
        """``names`` checked, or every projection."""
        return [self.registry.get(n).name for n in names] if names else self.registry.names()

    @contextmanager
    def running(self, names: Sequence[str] | None = None) -> Iterator[list[ProjectionRunner]]:
        """Runners of the projections working in background threads for the duration of the block."""
        stop = threading.Event()
        runners = [self.runner(n) for n in self.names(names)]
        threads = [threading.Thread(target=r.run, args=(stop,), name=f"projection-{r.name}") for r in runners]
        for t in threads:
            t.daemon = True
            t.start()
        try:
            yield runners
        finally:
            stop.set()
            for t in threads:
                t.join(30)

    def run(self, stop: threading.Event, names: Sequence[str] | None = None) -> None:
        """Run the projections' runners until ``stop`` is set."""
        with self.running(names):
            stop.wait()

    def catch_up(self, names: Sequence[str] | None = None) -> int:
        """Apply, in this process, the partitions no worker owns (what `query` does when nobody serves)."""
        read = 0
        for name in self.names(names):
            claims = self._claims(name, False)
            try:
                owned = claims.claim(self.feed.partitions)
                runner = ProjectionRunner(self.store(name), self.feed)
                read += runner.catch_up({p: self.feed.end_offset(p) for p in owned})
            finally:
                claims.release()
        return read

    def lag(self) -> dict[str, int]:
        """Events not yet applied, per projection."""
        return {n: ProjectionRunner(self.store(n), self.feed).lag() for n in self.names()}

    def rebuild(self, name: str, progress: ProgressFactory = progress_line) -> int:
        """Rebuild ``name`` from offset 0 into shadow tables and swap them in."""
        return rebuild(self.store(name), self.feed, progress)

    def verify(self, names: Sequence[str] | None = None, progress: ProgressFactory = progress_line) -> list[str]:
        """Replay each projection into a scratch copy and return the drift from the live read models."""
        return [line for n in self.names(names) for line in verify(self.store(n), self.feed, progress)]

    def close(self) -> None:
        """Release the read side's connections."""
        self._close()
