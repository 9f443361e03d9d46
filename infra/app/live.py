"""Waiting on the event loop: long-polls and streams of the change feed, and read-your-writes.

A wait registers its watch (``waiting.py``) before it reads, so no commit falls between
the read and the sleep, and it reads only when woken. Reads run on worker threads (the
queries are blocking calls), never on the loop. Readers of the same page share it: a page
of a cursor is read once while no notice of its collections arrived since the read began
(the waiting room's stamp), so one wake-up of many waiters at one cursor is one query, and
they send the same bytes (``SharedPage``: the JSON encoded once, compressed at most once
per coding).
When the room is not listening, nothing is shared and each wait ends at its timeout.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from typing import Any

from anyio import to_thread

from ...domain.records import Position
from ...projections.errors import ProjectionLagging
from ...projections.queries import ReadModelQueries
from .cursors import decode_cursor
from .sync import MAX_WAIT_S, SyncService, subscription
from .waiting import Stamp, WaitingRoom

MAX_SHARED_PAGES = 1024
MAX_SHARED_BYTES = 32 << 20
"""Pages kept for sharing: at most this many, holding at most this many bytes of JSON."""
INLINE_CODING_BYTES = 16 << 10
"""Pages up to this size are compressed on the loop; larger ones on a worker thread."""
Key = tuple[str, str, tuple[str, ...], int]


class SharedPage:
    """One page of the feed, as JSON encoded once, compressed at most once per coding."""

    __slots__ = ("_coded", "_frame", "_positions", "json", "page")

    def __init__(self, page: dict[str, Any]) -> None:
        self.page = page
        self.json = json.dumps(page, separators=(",", ":"), default=str).encode()
        self._coded: dict[str, asyncio.Future[bytes]] = {}
        self._frame: bytes | None = None
        self._positions: dict[str, int] | None = None

    @property
    def news(self) -> bool:
        """Whether it has changes, or says the cursor starts over."""
        return bool(self.page["changes"] or self.page["reset"])

    @property
    def cursor(self) -> str:
        return str(self.page["cursor"])

    @property
    def positions(self) -> dict[str, int]:
        """The positions its cursor holds, by collection."""
        if self._positions is None:
            self._positions = decode_cursor(self.cursor).positions
        return self._positions

    async def coded(self, coding: str, encode: Callable[[bytes], bytes]) -> bytes:
        """The JSON compressed with ``coding``: once for all who ask, a large page on a worker thread."""
        if len(self.json) <= INLINE_CODING_BYTES:
            if coding not in self._coded:
                self._coded[coding] = asyncio.get_running_loop().create_future()
                self._coded[coding].set_result(encode(self.json))
        elif coding not in self._coded:
            self._coded[coding] = asyncio.ensure_future(to_thread.run_sync(encode, self.json))
        return await asyncio.shield(self._coded[coding])

    def frame(self) -> bytes:
        """The page as a server-sent ``changes`` event."""
        if self._frame is None:
            self._frame = b"event: changes\nid: " + self.cursor.encode() + b"\ndata: " + self.json + b"\n\n"
        return self._frame


class LivePulls:
    """Pages of the change feed after a cursor, read when there is news, shared by the readers of one cursor."""

    def __init__(self, service: SyncService, waiting: WaitingRoom) -> None:
        self.service, self.waiting = service, waiting
        self._pages: OrderedDict[Key, tuple[Stamp, asyncio.Future[SharedPage]]] = OrderedDict()
        self._bytes = 0

    async def read(
        self, cursor: str | None, collections: Sequence[str], limit: int, tenant: str, subscribed: Sequence[str] = ()
    ) -> SharedPage:
        """The page after ``cursor`` (whose ``subscription`` is ``subscribed``, when known); InvalidInput for a
        malformed cursor or subscription."""
        subscribed = subscribed or subscribed_feeds(cursor, tuple(collections), tenant)
        if not self.waiting.live:
            return await self._fetch(cursor, collections, limit, tenant)
        key, stamp = (tenant, cursor or "", tuple(collections), limit), self.waiting.stamp(subscribed)
        held = self._pages.get(key)
        if held is None or held[0] != stamp:
            held = stamp, asyncio.ensure_future(self._fetch(cursor, collections, limit, tenant))
            held[1].add_done_callback(lambda done: self._kept(key, done))
            self._forget(key)
            self._pages[key] = held
        elif held[1].done() and not held[1].cancelled() and held[1].exception() is None:
            return held[1].result()  # current: no need to wait for it
        return await asyncio.shield(held[1])

    async def _fetch(self, cursor: str | None, collections: Sequence[str], limit: int, tenant: str) -> SharedPage:
        page = await to_thread.run_sync(self.service.pull, cursor, collections, limit, tenant)
        return await to_thread.run_sync(SharedPage, page) if len(page["changes"]) > 50 else SharedPage(page)

    def _kept(self, key: Key, done: asyncio.Future[SharedPage]) -> None:
        """Count a read page's bytes (a failed read is forgotten), and forget the oldest pages past the caps."""
        held = self._pages.get(key)
        if held is None or held[1] is not done:
            return
        if done.cancelled() or done.exception() is not None:
            del self._pages[key]
            return
        self._bytes += len(done.result().json)
        while self._pages and (len(self._pages) > MAX_SHARED_PAGES or self._bytes > MAX_SHARED_BYTES):
            self._forget(next(iter(self._pages)))

    def _forget(self, key: Key) -> None:
        held = self._pages.pop(key, None)
        if held is not None and held[1].done() and not held[1].cancelled() and held[1].exception() is None:
            self._bytes -= len(held[1].result().json)

    async def wait(
        self, cursor: str | None, collections: Sequence[str], limit: int, wait_s: float, tenant: str
    ) -> SharedPage:
        """The page after ``cursor``, waiting up to ``wait_s`` for one with news (long-poll); at once when the
        process is stopping."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_s, MAX_WAIT_S)
        subscribed = subscribed_feeds(cursor, tuple(collections), tenant)
        with self.waiting.watching_feeds(dict.fromkeys(subscribed, 0)) as watch:
            while True:
                watch.clear()
                page = await self.read(cursor, collections, limit, tenant, subscribed)
                left = deadline - loop.time()
                if page.news or left <= 0 or self.waiting.draining:
                    return page
                watch.known.update((c, page.positions.get(c, 0)) for c in subscribed)
                await watch.wait(left)


@functools.lru_cache(maxsize=1024)
def subscribed_feeds(cursor: str | None, collections: tuple[str, ...], tenant: str) -> tuple[str, ...]:
    """``subscription``'s feeds, remembered: thousands of waiting clients hold the same few cursors."""
    return tuple(subscription(cursor, collections, tenant)[1])


async def caught_up(
    queries: ReadModelQueries,
    waiting: WaitingRoom,
    positions: Collection[Position],
    timeout_s: float,
    projection: str = "documents",
) -> None:
    """Return once ``projection``'s checkpoints passed every position (read-your-writes), else ProjectionLagging."""
    needed: dict[int, int] = {}
    for p in positions:
        needed[p.partition] = max(p.offset, needed.get(p.partition, -1))
    if not needed:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    with waiting.watching_checkpoints(projection, needed) as watch:
        while watch.needed:
            watch.clear()
            at = await to_thread.run_sync(queries.checkpoints, projection)
            for partition, next_offset in at.items():
                if next_offset > watch.needed.get(partition, next_offset):
                    del watch.needed[partition]
            left = deadline - loop.time()
            if watch.needed and (left <= 0 or waiting.draining):
                raise lagging(projection, watch.needed, at, timeout_s)
            if watch.needed:
                await watch.wait(left)  # crossed off by notices, or woken to read again (a resync, the end)


def lagging(projection: str, needed: dict[int, int], at: dict[int, int], timeout_s: float) -> ProjectionLagging:
    """Why a read-your-writes wait gave up: the first position the projection has not reached."""
    partition, offset = min(needed.items())
    return ProjectionLagging(
        f"projection {projection!r} has not reached partition {partition} offset {offset}"
        f" within {timeout_s:g} s (it is at offset {at.get(partition, 0)}); is a projection runner running?"
        " start one with `syncbackbone serve --http HOST:PORT` or `syncbackbone projections run`"
    )
