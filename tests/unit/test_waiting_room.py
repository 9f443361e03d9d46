"""The wake-up hub of a gateway process: which notices wake which waiting requests, and when pages stay shared.

The notices come from ``Scripted``, an in-memory NoticeSource (a real subclass of the port) fed by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from syncbackbone.infra.app.waiting import WaitingRoom
from syncbackbone.projections.notices import CheckpointAdvanced, FeedAdvanced, Interrupted, Notice, NoticeSource, Resync


class Scripted(NoticeSource):
    """Notices the test sends, after the opening resync."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Notice] = asyncio.Queue()

    async def notices(self) -> AsyncIterator[Notice]:
        yield Resync()
        while True:
            yield await self.queue.get()

    async def send(self, *notices: Notice) -> None:
        for notice in notices:
            self.queue.put_nowait(notice)
        while not self.queue.empty():
            await asyncio.sleep(0)
        await asyncio.sleep(0)


def run(scenario: Callable[[WaitingRoom, Scripted], Awaitable[None]]) -> None:
    async def main() -> None:
        source = Scripted()
        hub = WaitingRoom(source)
        await hub.start()
        try:
            await scenario(hub, source)
        finally:
            await hub.stop()

    asyncio.run(main())


def test_a_feed_notice_wakes_only_the_watches_of_that_collection_that_have_seen_less_of_it() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with (
            hub.watching_feeds({"acme~notes": 5}) as behind,
            hub.watching_feeds({"acme~notes": 7}) as level,
            hub.watching_feeds({"acme~tasks": 0}) as elsewhere,
            hub.watching_feeds({"other~notes": 0}) as other_tenant,
        ):
            await source.send(FeedAdvanced("changes", "acme~notes", 7))
            assert [behind.woken, level.woken, elsewhere.woken, other_tenant.woken] == [True, False, False, False]

    run(scenario)


def test_a_notice_of_another_projections_sequence_wakes_no_feed_watch() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with hub.watching_feeds({"acme~notes": 0}) as watch:
            await source.send(FeedAdvanced("audit", "acme~notes", 9))
            assert not watch.woken

    run(scenario)


def test_a_checkpoint_watch_wakes_once_every_partition_it_needs_is_passed() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with hub.watching_checkpoints("documents", {0: 10, 3: 4}) as watch:
            await source.send(CheckpointAdvanced("documents", 0, 11), CheckpointAdvanced("changes", 3, 50))
            assert not watch.woken and watch.needed == {3: 4}
            await source.send(CheckpointAdvanced("documents", 3, 4))
            assert not watch.woken
            await source.send(CheckpointAdvanced("documents", 3, 5))
            assert watch.woken and watch.needed == {}

    run(scenario)


def test_a_resync_wakes_every_watch_and_an_interruption_makes_the_hub_deaf_until_the_next() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        assert hub.live
        with hub.watching_feeds({"acme~notes": 3}) as feed, hub.watching_checkpoints("documents", {0: 1}) as rywr:
            await source.send(Interrupted())
            assert not hub.live and not feed.woken
            await source.send(Resync())
            assert hub.live and feed.woken and rywr.woken

    run(scenario)


def test_a_drain_wakes_the_waiting_watches_and_every_later_one_at_once() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with hub.watching_feeds({"acme~notes": 0}) as waiting:
            sleeping = asyncio.create_task(waiting.wait(60))
            await asyncio.sleep(0)
            hub.drain()
            assert await sleeping
        with hub.watching_feeds({"acme~notes": 0}) as later:
            assert later.woken and await later.wait(60)

    run(scenario)


def test_a_watch_that_nothing_wakes_returns_false_at_its_timeout() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with hub.watching_feeds({"acme~notes": 0}) as watch:
            assert not await watch.wait(0.01)

    run(scenario)


def test_the_stamp_of_collections_changes_with_their_notices_and_resyncs_only() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        stamp = hub.stamp(["acme~notes"])
        await source.send(FeedAdvanced("changes", "acme~tasks", 1), CheckpointAdvanced("changes", 0, 9))
        assert hub.stamp(["acme~notes"]) == stamp
        await source.send(FeedAdvanced("changes", "acme~notes", 1))
        moved = hub.stamp(["acme~notes"])
        assert moved != stamp
        await source.send(Resync())
        assert hub.stamp(["acme~notes"]) != moved

    run(scenario)


def test_a_watch_leaves_the_hub_when_its_request_is_done() -> None:
    async def scenario(hub: WaitingRoom, source: Scripted) -> None:
        with hub.watching_feeds({"acme~notes": 0, "acme~tasks": 0}), hub.watching_checkpoints("documents", {0: 1}):
            assert hub.watching() == 2
        assert hub.watching() == 0

    run(scenario)
