"""The projection runner on real PostgreSQL and the embedded log: folds, dead letters, rebuild, verify, claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from support import drop_namespace

from syncbackbone.commands.models import CreateDocument, PatchDocument, PutDocument
from syncbackbone.domain.documents import DocumentCreated
from syncbackbone.domain.records import EventMeta
from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.postgres.database import Database
from syncbackbone.infra.postgres.read_models.claims import AdvisoryLockClaims
from syncbackbone.infra.settings import load_settings
from syncbackbone.projections.errors import NotFound, ProjectionLagging
from syncbackbone.projections.maintenance import retry
from syncbackbone.projections.runner import ProjectionRunner


@pytest.fixture
def backbone(pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    bb = bootstrap(load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, partitions=4))
    yield bb
    bb.close()


@pytest.fixture
def side(backbone: Backbone, pg_dsn: str, namespace: str) -> Iterator[ReadSide]:
    rs = backbone.read_side()
    yield rs
    rs.close()
    drop_namespace(pg_dsn, namespace)


class Quiet:
    """A progress sink that says nothing (and may run a probe on each step)."""

    def __init__(self, probe: object = None) -> None:
        self.probe = probe

    def advance(self, n: int = 1) -> None:
        if callable(self.probe):
            self.probe()

    def done(self) -> None:
        pass


def test_a_runner_folds_commands_into_documents_changes_and_audit(backbone: Backbone, side: ReadSide) -> None:
    with backbone.running_processor(), side.running():
        backbone.submit(CreateDocument(collection="notes", id="a", data={"t": 1, "x": 0}, actor="ann"))
        result = backbone.submit(PatchDocument(collection="notes", id="a", data={"u": 2}, unset=["x"]))
        side.queries.wait_for(result.positions, 10, ["documents", "changes", "audit"])

        doc = side.queries.document("notes", "a")
        feed = side.queries.changes("notes")
        audit = side.queries.audit("notes/a")

    assert (doc.version, doc.data) == (2, {"t": 1, "u": 2})
    assert [(c["op"], c["position"]) for c in feed] == [("created", 1), ("patched", 2)]
    assert [(a["version"], a["actor"]) for a in audit] == [(1, "ann"), (2, None)]
    assert audit[1]["causation_id"] == result.command_id


def test_a_query_waiting_for_positions_times_out_with_a_clear_error_when_nothing_applies_them(
    backbone: Backbone, side: ReadSide
) -> None:
    with backbone.running_processor():
        result = backbone.submit(PutDocument(collection="notes", id="late", data={}))

    with pytest.raises(ProjectionLagging, match="has not reached partition .* is a projection runner running"):
        side.queries.wait_for(result.positions, 0.3)


def test_keyset_pagination_and_json_filters_select_documents(backbone: Backbone, side: ReadSide) -> None:
    with backbone.running_processor():
        backbone.submit_many([PutDocument(collection="p", id=f"d{i}", data={"even": i % 2 == 0}) for i in range(5)])
    side.catch_up()

    first = side.queries.documents("p", limit=2)
    second = side.queries.documents("p", after=first.next_after, limit=2)
    evens = side.queries.documents("p", where={"even": True})

    assert [d.id for d in first.items + second.items] == ["d0", "d1", "d2", "d3"]
    assert [d.id for d in evens.items] == ["d0", "d2", "d4"] and evens.next_after is None


def test_an_unappliable_event_parks_its_aggregate_while_others_flow_and_skip_releases_it(
    backbone: Backbone, side: ReadSide
) -> None:
    # an event PostgreSQL's jsonb refuses (a NUL), written past the command path (which refuses it)
    poison = backbone.codec.new_event("n/bad", 1, DocumentCreated({"s": "nul\x00"}), EventMeta(event_id="poison"))
    backbone.log.append([poison])
    side.catch_up(["documents"])  # in one batch with the fix, the NUL state would be folded away
    with backbone.running_processor():
        backbone.submit(PutDocument(collection="n", id="bad", data={"s": "fixed"}))
        backbone.submit(PutDocument(collection="n", id="good", data={"s": "ok"}))
    side.catch_up(["documents"])
    store = side.store("documents")

    assert [(e.dead.version, e.dead.parked) for e in store.dead_letters(10)] == [(1, False), (2, True)]
    assert side.queries.document("n", "good").data == {"s": "ok"}
    again = retry(store, side.feed, "n/bad")
    assert (again.retried, again.still_open) == (0, 2) and "Unicode" in (again.error or "")
    released = retry(store, side.feed, "n/bad", skip_first=True)
    assert (released.skipped, released.retried, released.still_open) == (1, 1, 0)
    assert side.queries.document("n", "bad").data == {"s": "fixed"}


def test_verify_finds_drift_and_rebuild_serves_the_old_copy_until_its_atomic_swap(
    backbone: Backbone, side: ReadSide, pg_dsn: str, namespace: str
) -> None:
    with backbone.running_processor():
        backbone.submit_many([PutDocument(collection="r", id=f"d{i}", data={"i": i}) for i in range(50)])
    side.catch_up()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{namespace}__documents\".documents SET data = '{{\"i\": -1}}' WHERE id = 'd7'")
    assert len(side.verify(["documents"], progress=lambda *_: Quiet())) == 2

    seen_during: list[dict[str, object]] = []
    probe = Quiet(lambda: seen_during.append(side.queries.document("r", "d7").data))
    side.rebuild("documents", progress=lambda *_: probe)

    assert seen_during and all(data == {"i": -1} for data in seen_during)
    assert side.queries.document("r", "d7").data == {"i": 7}
    assert side.verify(progress=lambda *_: Quiet()) == []


def test_two_runners_racing_on_the_same_partitions_apply_each_event_once(backbone: Backbone, side: ReadSide) -> None:
    with backbone.running_processor():
        backbone.submit_many([PutDocument(collection="x", id=f"d{i % 40}", data={"i": i}) for i in range(400)])
    runners = [ProjectionRunner(side.store("audit"), side.feed, batch_size=7) for _ in range(2)]
    threads = [threading.Thread(target=r.catch_up) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sum(r.totals.applied for r in runners) == 400  # a PK on (aggregate, version) would refuse a second time
    assert side.store("audit").dead_letters(10) == []
    assert side.verify(["audit"], progress=lambda *_: Quiet()) == []


def test_workers_share_partitions_fairly_and_a_survivor_takes_them_all(pg_dsn: str, namespace: str) -> None:
    a, b = (AdvisoryLockClaims(Database(pg_dsn, "claims"), namespace, "documents") for _ in range(2))
    try:
        assert a.claim(4) == {0, 1, 2, 3}
        assert b.claim(4) == set()  # a newcomer waits for the owner to hand over its extra partitions
        assert a.claim(4) == {0, 1}
        assert b.claim(4) == {2, 3}
        a.release()
        assert b.claim(4) == {0, 1, 2, 3}
    finally:
        a.release()
        b.release()


def test_a_missing_document_is_not_found(side: ReadSide) -> None:
    with pytest.raises(NotFound):
        side.queries.document("nothing", "here")
