"""Wiring of the read side: stores, runners, queries and maintenance for one backbone.

``read_side(backbone)`` gives a ``ReadSide`` over the backbone's event log (embedded or
Kafka) and its PostgreSQL server. Nothing here does I/O at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..projections.builtin import BUILTIN
from ..projections.maintenance import ProgressFactory, rebuild, verify
from ..projections.ports import EventFeed
from ..projections.projection import Registry
from ..projections.runner import ProjectionRunner
from .bootstrap import Backbone, resolve_pg_dsn
from .postgres_schema import open_pool
from .progress import Progress
from .projection_claims import AdvisoryLockClaims
from .projection_feed import LogFeed
from .projection_store import PostgresReadModelStore
from .read_models import ReadModels

log = logging.getLogger(__name__)


def progress_line(label: str, total: int) -> Progress:
    """A progress line on stderr counting events."""
    return Progress(label, total, unit="events")


class ReadSide:
    """The projections of one namespace: their stores, runners, queries and maintenance."""

    def __init__(self, dsn: str, namespace: str, feed: EventFeed, registry: Registry = BUILTIN) -> None:
        self.dsn, self.namespace, self.feed, self.registry = dsn, namespace, feed, registry
        self.pool = open_pool(dsn, max_size=8)
        self.stores = {
            name: PostgresReadModelStore(self.pool, namespace, registry.get(name)) for name in registry.names()
        }
        for store in self.stores.values():
            store.install(feed.partitions)
        self.queries = ReadModels(self.pool, namespace)

    def store(self, name: str) -> PostgresReadModelStore:
        """The live store of projection ``name`` (UnknownProjection if there is none)."""
        self.registry.get(name)
        return self.stores[name]

    def runner(self, name: str, batch_size: int = 2000) -> ProjectionRunner:
        """A runner of ``name`` that claims its partitions in the worker group."""
        claims = AdvisoryLockClaims(self.dsn, self.namespace, name)
        return ProjectionRunner(self.store(name), self.feed, claims, batch_size)

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
            claims = AdvisoryLockClaims(self.dsn, self.namespace, name, member=False)
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
        self.pool.close()


def read_side(backbone: Backbone, registry: Registry = BUILTIN) -> ReadSide:
    """The read side of ``backbone``: its log as the feed, read models on its PostgreSQL server."""
    dsn = backbone.pg_dsn or resolve_pg_dsn(backbone.settings)
    return ReadSide(dsn, backbone.settings.namespace, LogFeed(backbone.log, backbone.codec), registry)
