"""The read models' commit notices on real PostgreSQL: what a live store NOTIFYs, and what the listener hears.

A committed batch announces, in its own transaction, the last position of each feed it appended to (once
per collection, however many changes) and the checkpoint it reached; a scratch copy (a rebuild's) announces
nothing, and swapping it in is a resync. The listener's first notice is a resync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from support import drop_namespace

from syncbackbone.commands.models import PutDocument
from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings
from syncbackbone.projections.notices import CheckpointAdvanced, FeedAdvanced, Notice, NoticeSource, Resync


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


def heard(source: NoticeSource, action: Callable[[], object], last: Callable[[Notice], bool]) -> list[Notice]:
    """The notices heard while ``action`` runs, after the opening resync, up to the one ``last`` picks."""

    async def listen() -> list[Notice]:
        notices = source.notices()
        try:
            assert isinstance(await anext(notices), Resync)
            await asyncio.to_thread(action)
            got: list[Notice] = []
            async with asyncio.timeout(30):
                while not got or not last(got[-1]):
                    got.append(await anext(notices))
            return got
        finally:
            await notices.aclose()

    return asyncio.run(listen())


def put_notes(backbone: Backbone, *ids: tuple[str, str]) -> None:
    with backbone.running_processor():
        backbone.submit_many([PutDocument(collection=c, id=i, data={"x": 1}) for c, i in ids])


def test_a_batch_of_the_feed_notifies_each_collection_once_with_its_last_position_then_its_checkpoint(
    backbone: Backbone, side: ReadSide
) -> None:
    put_notes(backbone, ("acme~notes", "a"), ("acme~notes", "b"), ("acme~tasks", "c"), ("acme~notes", "d"))
    assert side.notices is not None

    notices = heard(side.notices, lambda: side.catch_up(["changes"]), lambda n: isinstance(n, CheckpointAdvanced))

    assert notices == [
        FeedAdvanced("changes", "acme~notes", 3),
        FeedAdvanced("changes", "acme~tasks", 1),
        CheckpointAdvanced("changes", 0, 4),
    ]


def test_a_batch_of_a_projection_without_a_feed_notifies_only_its_checkpoint(
    backbone: Backbone, side: ReadSide
) -> None:
    put_notes(backbone, ("notes", "a"), ("notes", "b"))
    assert side.notices is not None

    notices = heard(side.notices, lambda: side.catch_up(["documents"]), lambda n: isinstance(n, CheckpointAdvanced))

    assert notices == [CheckpointAdvanced("documents", 0, 2)]


def test_a_rebuild_notifies_nothing_while_it_replays_and_a_resync_when_it_swaps_in(
    backbone: Backbone, side: ReadSide
) -> None:
    put_notes(backbone, ("notes", "a"), ("notes", "b"))
    side.catch_up(["changes"])
    assert side.notices is not None

    notices = heard(side.notices, lambda: side.rebuild("changes", lambda label, total: Quiet()), lambda n: True)

    assert notices == [Resync()]


class Quiet:
    """A progress sink that says nothing."""

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass
