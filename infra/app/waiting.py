"""The waiting requests of one gateway process, woken by the read models' commit notices (no polling).

A request that waits (a long-poll, a stream, a read-your-writes read) registers a ``Watch``
*before* it reads, reads, then sleeps on the watch: a commit its read could not see is
noticed after the watch was registered, so it wakes the watch. Waiting costs no thread and
no database connection: a watch is a future in a dict keyed by collection (or projection).
``start`` consumes the process's one NoticeSource on the event loop:

- FeedAdvanced of the feed wakes the watches of that collection that have seen less of it;
- CheckpointAdvanced crosses off the partitions a checkpoint watch waits for, and wakes it
  once none is left (read-your-writes without a query);
- Resync wakes every watch (each reads again) and makes the room *live*; Interrupted makes it deaf;
- ``drain`` (at shutdown) wakes every watch, now and from then on.

``stamp(collections)`` changes whenever a notice of one of them (or a Resync) arrives, so
while the room is live a page read under an unchanged stamp is still the current one: the
waiters at the same cursor share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from ...projections.notices import CheckpointAdvanced, FeedAdvanced, Interrupted, Notice, NoticeSource, Resync

log = logging.getLogger(__name__)
FEED = "changes"
"""The projection whose feed the sync layer waits on."""
MAX_STAMPS = 100_000
"""Collections whose last notice the room remembers; one forgotten counts as changed."""
Stamp = tuple[int, ...]


class Watch:
    """One waiting request: ``known`` positions per collection it follows, or ``needed`` offsets per partition."""

    __slots__ = ("_future", "_woken", "known", "needed")

    def __init__(self, known: Mapping[str, int] | None = None, needed: Mapping[int, int] | None = None) -> None:
        self.known, self.needed = dict(known or {}), dict(needed or {})
        self._woken = False
        self._future: asyncio.Future[None] | None = None

    @property
    def woken(self) -> bool:
        """Whether something happened since the last ``clear``."""
        return self._woken

    def wake(self) -> None:
        self._woken = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    def clear(self) -> None:
        self._woken = False

    async def wait(self, timeout_s: float) -> bool:
        """Sleep until woken (True at once if it was already) or ``timeout_s`` passed (False)."""
        if self._woken or timeout_s <= 0:
            return self._woken
        loop = asyncio.get_running_loop()
        self._future = future = loop.create_future()
        timer = loop.call_later(timeout_s, expire, future)
        try:
            await future
        finally:
            timer.cancel()
            self._future = None
        return self._woken


def expire(future: asyncio.Future[None]) -> None:
    """End a watch's sleep at its timeout."""
    if not future.done():
        future.set_result(None)


class WaitingRoom:
    """The watches of one process and the notices that wake them."""

    def __init__(self, source: NoticeSource | None, feed: str = FEED) -> None:
        self._source, self.feed = source, feed
        self._feeds: dict[str, set[Watch]] = {}
        self._checkpoints: dict[str, set[Watch]] = {}
        self._seq = self._resynced = self._floor = 0
        self._last: dict[str, int] = {}
        self.live = False
        """Listening: every commit from now on will be noticed."""
        self.draining = False
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, timeout_s: float = 10.0) -> None:
        """Consume the notices on the running loop; return once listening, or after ``timeout_s`` (until it
        listens, waits end at their timeouts)."""
        self._loop = asyncio.get_running_loop()
        if self._source is None:
            return
        self._listening = asyncio.Event()
        self._task = asyncio.create_task(self._consume(), name="read-model notices")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._listening.wait()
        if not self.live:
            log.warning("not listening for read-model notices yet; waits end at their timeouts until then")

    async def stop(self) -> None:
        """Drain, and stop consuming notices."""
        self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.live = False

    async def _consume(self) -> None:
        assert self._source is not None
        async for notice in self._source.notices():
            self.deliver(notice)

    def deliver(self, notice: Notice) -> None:
        """Wake the watches ``notice`` concerns."""
        self._seq += 1
        if isinstance(notice, FeedAdvanced):
            self._fed(notice)
        elif isinstance(notice, CheckpointAdvanced):
            self._checked(notice)
        elif isinstance(notice, Resync):
            self.live, self._resynced = True, self._seq
            self._wake_all()
            if self._listening is not None:
                self._listening.set()
        elif isinstance(notice, Interrupted):
            self.live = False

    def _fed(self, notice: FeedAdvanced) -> None:
        if notice.projection != self.feed:
            return
        self._last.pop(notice.collection, None)
        self._last[notice.collection] = self._seq
        if len(self._last) > MAX_STAMPS:
            self._floor = self._seq  # a forgotten collection's stamp moves on: its pages are read again
            del self._last[next(iter(self._last))]
        for watch in self._feeds.get(notice.collection, ()):
            if notice.position > watch.known.get(notice.collection, 0):
                watch.wake()

    def _checked(self, notice: CheckpointAdvanced) -> None:
        for watch in self._checkpoints.get(notice.projection, ()):
            needed = watch.needed.get(notice.partition)
            if needed is not None and notice.next_offset > needed:
                del watch.needed[notice.partition]
                if not watch.needed:
                    watch.wake()

    def _wake_all(self) -> None:
        for watches in (*self._feeds.values(), *self._checkpoints.values()):
            for watch in watches:
                watch.wake()

    def stamp(self, collections: Collection[str]) -> Stamp:
        """What has been noticed of ``collections``: equal stamps, no news of them in between."""
        return (self._resynced, *(self._last.get(c, self._floor) for c in collections))

    def drain(self) -> None:
        """Wake every watch, now and from now on (the process is stopping)."""
        self.draining = True
        self._wake_all()

    def drain_soon(self) -> None:
        """``drain`` on the room's loop, from any thread."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self.drain)
        else:
            self.drain()

    @contextmanager
    def watching_feeds(self, known: Mapping[str, int]) -> Iterator[Watch]:
        """A watch of the feeds of ``known``'s collections, woken by a position past the one it holds."""
        watch = Watch(known=known)
        with self._registered(self._feeds, watch.known, watch):
            yield watch

    @contextmanager
    def watching_checkpoints(self, projection: str, needed: Mapping[int, int]) -> Iterator[Watch]:
        """A watch of ``projection``'s checkpoints, woken once each partition passed its ``needed`` offset."""
        watch = Watch(needed=needed)
        with self._registered(self._checkpoints, [projection], watch):
            yield watch

    @contextmanager
    def _registered(self, table: dict[str, set[Watch]], keys: Collection[str], watch: Watch) -> Iterator[None]:
        keys = list(keys)
        for key in keys:
            table.setdefault(key, set()).add(watch)
        if self.draining:
            watch.wake()
        try:
            yield
        finally:
            for key in keys:
                watches = table.get(key)
                if watches is not None:
                    watches.discard(watch)
                    if not watches:
                        del table[key]

    def watching(self) -> int:
        """Watches registered now (each waiting request holds one)."""
        return len({id(w) for watches in (*self._feeds.values(), *self._checkpoints.values()) for w in watches})
