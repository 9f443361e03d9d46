"""Waits on the event loop over real PostgreSQL: long-polls at one cursor share one read per wake-up and the
same bytes, and read-your-writes is woken by the projection's commits, not by reading checkpoints again.

``Counted`` and ``CountedReadModels`` are the real service and queries, counting the reads they make.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from support import drop_namespace

from syncbackbone.commands.models import PutDocument
from syncbackbone.infra.app.live import LivePulls, caught_up
from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.app.sync import SyncService
from syncbackbone.infra.app.waiting import WaitingRoom
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.postgres.database import Database
from syncbackbone.infra.postgres.read_models.queries import ReadModels
from syncbackbone.infra.settings import load_settings
from syncbackbone.projections.errors import ProjectionLagging


class Counted(SyncService):
    """The sync service, counting the pages it reads."""

    reads = 0
    lock = threading.Lock()

    def pull(self, cursor: str | None, collections: Sequence[str], limit: int = 500, tenant: str = "") -> Any:
        with self.lock:
            self.reads += 1
        return super().pull(cursor, collections, limit, tenant)


class CountedReadModels(ReadModels):
    """The read-model queries, counting the checkpoint reads."""

    checkpoint_reads = 0

    def checkpoints(self, projection: str) -> dict[int, int]:
        self.checkpoint_reads += 1
        return super().checkpoints(projection)


@pytest.fixture
def backbone(pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    bb = bootstrap(load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, partitions=1))
    yield bb
    bb.close()


@pytest.fixture
def side(backbone: Backbone, pg_dsn: str, namespace: str) -> Iterator[ReadSide]:
    rs = backbone.read_side()
    yield rs
    rs.close()
    drop_namespace(pg_dsn, namespace)


def put_and_project(backbone: Backbone, side: ReadSide, doc_id: str, projections: Sequence[str]) -> Any:
    with backbone.running_processor():
        result = backbone.submit(PutDocument(collection="acme~notes", id=doc_id, data={"x": 1}))
    side.catch_up(projections)
    return result


async def registered(hub: WaitingRoom, count: int) -> None:
    async with asyncio.timeout(30):
        while hub.watching() < count:
            await asyncio.sleep(0.01)


def test_long_polls_at_one_cursor_share_one_read_per_wake_up_and_the_same_page_bytes(
    backbone: Backbone, side: ReadSide
) -> None:
    service = Counted(backbone, side.queries)

    async def scenario() -> tuple[int, int, list[Any]]:
        hub = WaitingRoom(side.notices)
        await hub.start()
        try:
            pulls = LivePulls(service, hub)
            cursor = (await pulls.read(None, ["notes"], 100, "acme")).cursor
            service.reads = 0
            await pulls.read(cursor, ["notes"], 100, "acme")  # read once: the waits find it current
            waits = [asyncio.create_task(pulls.wait(cursor, ["notes"], 100, 30, "acme")) for _ in range(100)]
            await registered(hub, 100)
            idle_reads = service.reads
            await asyncio.to_thread(put_and_project, backbone, side, "n1", ["changes"])
            pages = await asyncio.gather(*waits)
            return idle_reads, service.reads, pages
        finally:
            await hub.stop()

    idle_reads, reads, pages = asyncio.run(scenario())

    assert idle_reads == 1 and reads == 2
    assert [c["id"] for c in pages[0].page["changes"]] == ["n1"]
    assert all(page is pages[0] for page in pages) and pages[0].frame() is pages[-1].frame()


def test_read_your_writes_is_woken_by_the_projections_commit_without_reading_checkpoints_again(
    backbone: Backbone, side: ReadSide, pg_dsn: str, namespace: str
) -> None:
    queries = CountedReadModels(Database(pg_dsn, "counted read models"), namespace)
    with backbone.running_processor():
        result = backbone.submit(PutDocument(collection="acme~notes", id="mine", data={"x": 1}))

    async def scenario() -> None:
        hub = WaitingRoom(side.notices)
        await hub.start()
        try:
            waiting = asyncio.create_task(caught_up(queries, hub, result.positions, 30))
            await registered(hub, 1)
            await asyncio.to_thread(side.catch_up, ["documents"])
            await waiting
        finally:
            await hub.stop()

    asyncio.run(scenario())

    assert queries.checkpoint_reads == 1
    assert side.queries.document("acme~notes", "mine").version == 1


def test_read_your_writes_gives_up_at_its_timeout_naming_the_position_not_reached(
    backbone: Backbone, side: ReadSide
) -> None:
    with backbone.running_processor():
        result = backbone.submit(PutDocument(collection="acme~notes", id="late", data={}))

    async def scenario() -> None:
        hub = WaitingRoom(side.notices)
        await hub.start()
        try:
            await caught_up(side.queries, hub, result.positions, 0.2)
        finally:
            await hub.stop()

    with pytest.raises(ProjectionLagging, match="has not reached partition 0 offset 0 .* is a projection runner"):
        asyncio.run(scenario())
