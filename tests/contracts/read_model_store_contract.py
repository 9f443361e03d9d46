"""The contract every ReadModelStore adapter passes (PostgreSQL here).

Subclass ``ReadModelStoreContract`` and provide a ``make_store`` fixture: a function
``make(projection) -> ReadModelStore`` giving the live copy of ``projection`` in a fresh
namespace, not yet installed; the fixture drops everything after the test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from syncbackbone.projections.builtin import CHANGES, DOCUMENTS
from syncbackbone.projections.changes import Append, MergeJson, Upsert
from syncbackbone.projections.errors import ChangeRejected, CheckpointMoved
from syncbackbone.projections.ports import DeadEvent, ReadModelStore
from syncbackbone.projections.projection import Projection

StoreFactory = Callable[[Projection], ReadModelStore]
AT = datetime(2026, 1, 1, tzinfo=UTC)


def doc(doc_id: str, data: dict[str, object], version: int = 1) -> Upsert:
    row = {"collection": "c", "id": doc_id, "data": data, "version": version, "updated_at": AT, "deleted": False}
    return Upsert("documents", row)


def change(doc_id: str, collection: str = "c", version: int = 1) -> Append:
    row = {"collection": collection, "id": doc_id, "version": version, "op": "created", "data": {}, "unset": []}
    return Append("changes", row | {"recorded_at": AT, "causation_id": None, "actor": None})


def dead(agg: str, version: int, parked: bool = False) -> DeadEvent:
    return DeadEvent(0, version, agg, version, "DocumentCreated", "ValueError", "bad", parked)


class ReadModelStoreContract:
    """Behaviour every ReadModelStore must show."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        raise NotImplementedError("a subclass provides make_store")

    @pytest.fixture
    def documents(self, make_store: StoreFactory) -> ReadModelStore:
        store = make_store(DOCUMENTS)
        store.install(2)
        return store

    def test_install_is_idempotent_and_starts_every_partition_at_offset_zero(self, documents: ReadModelStore) -> None:
        documents.install(2)
        assert documents.checkpoints() == {0: 0, 1: 0}

    def test_changes_and_the_checkpoint_commit_together(self, documents: ReadModelStore) -> None:
        with documents.session(0, 0) as s:
            s.apply([doc("a", {"x": 1})])
            s.record({"c/a": 1}, [])
            s.advance(5)

        assert documents.checkpoints()[0] == 5
        with documents.session(0, 5) as s:
            assert s.seen(["c/a", "c/b"]) == {"c/a": 1}

    def test_a_failed_session_leaves_neither_changes_nor_checkpoint(self, documents: ReadModelStore) -> None:
        with pytest.raises(RuntimeError), documents.session(0, 0) as s:
            s.apply([doc("a", {"x": 1})])
            s.advance(5)
            raise RuntimeError("crash between apply and commit")

        assert documents.checkpoints()[0] == 0
        copy = documents.scratch_copy("verify")
        copy.install(2)
        try:
            assert documents.diff(copy, 10) == []
        finally:
            copy.discard()

    def test_a_session_expecting_another_checkpoint_is_refused(self, documents: ReadModelStore) -> None:
        with documents.session(1, 0) as s:
            s.advance(3)
        with pytest.raises(CheckpointMoved), documents.session(1, 0):
            pass

    def test_merges_set_and_unset_json_keys_and_a_missing_row_is_refused(self, documents: ReadModelStore) -> None:
        with documents.session(0, 0) as s:
            s.apply([doc("a", {"x": 1, "y": 2})])
            s.apply([MergeJson("documents", {"collection": "c", "id": "a", "version": 2}, "data", {"z": 3}, ("x",))])
            with pytest.raises(ChangeRejected):
                s.apply([MergeJson("documents", {"collection": "c", "id": "zz", "version": 2}, "data", {}, ())])
            s.advance(1)
        copy = documents.scratch_copy("verify")
        copy.install(2)
        try:
            with copy.session(0, 0) as s:
                s.apply([doc("a", {"y": 2, "z": 3}, version=2)])
                s.advance(1)
            assert documents.diff(copy, 10) == []
        finally:
            copy.discard()

    def test_refused_data_leaves_the_session_usable(self, documents: ReadModelStore) -> None:
        with documents.session(0, 0) as s:
            with pytest.raises(ChangeRejected):
                s.apply([doc("bad", {"s": "\x00"})])
            s.apply([doc("good", {"s": "ok"})])
            s.advance(2)
        assert documents.checkpoints()[0] == 2

    def test_dead_letters_are_sequenced_and_park_their_aggregate_until_resolved(
        self, documents: ReadModelStore
    ) -> None:
        with documents.session(0, 0) as s:
            s.record({"c/a": 2}, [dead("c/a", 1), dead("c/a", 2, parked=True), dead("c/b", 1)])
        with documents.session(0, None) as s:
            assert s.parked(["c/a", "c/b", "c/z"]) == {"c/a", "c/b"}
            letters = s.open_letters("c/a")
            assert [e.dead.version for e in letters] == [1, 2] and letters[0].seq < letters[1].seq
            s.resolve([e.seq for e in letters], "skipped")
        assert [e.dead.aggregate_id for e in documents.dead_letters(10)] == ["c/b"]
        assert len(documents.dead_letters(10, include_resolved=True, aggregate_id="c/a")) == 2

    def test_appends_are_numbered_per_group_in_commit_order(self, make_store: StoreFactory) -> None:
        feed = make_store(CHANGES)
        feed.install(2)
        with feed.session(0, 0) as s:
            s.apply([change("a"), change("b"), change("x", collection="other")])
            s.advance(3)
        with feed.session(1, 0) as s:
            s.apply([change("c")])
            s.advance(1)
        copy = feed.scratch_copy("verify")
        copy.install(2)
        try:
            with copy.session(0, 0) as s:
                s.apply([change("c"), change("a"), change("x", collection="other"), change("b")])
                s.advance(3)
            with copy.session(1, 0) as s:
                s.advance(1)
            assert feed.diff(copy, 10) == []  # positions differ with interleaving: verify ignores them
        finally:
            copy.discard()

    def test_diff_reports_rows_on_either_side(self, documents: ReadModelStore) -> None:
        copy = documents.scratch_copy("verify")
        copy.install(2)
        try:
            with documents.session(0, 0) as s:
                s.apply([doc("a", {"x": 1})])
            with copy.session(0, 0) as s:
                s.apply([doc("a", {"x": 2})])
            drift = documents.diff(copy, 10)
        finally:
            copy.discard()
        assert len(drift) == 2 and any('"x": 1' in d for d in drift) and any('"x": 2' in d for d in drift)

    def test_a_swapped_in_copy_becomes_the_live_read_models_with_its_checkpoints(
        self, documents: ReadModelStore
    ) -> None:
        with documents.session(0, 0) as s:
            s.apply([doc("old", {})])
            s.advance(9)
        copy = documents.scratch_copy("rebuild")
        copy.install(2)
        with copy.session(0, 0) as s:
            s.apply([doc("new", {})])
            s.advance(4)
        documents.swap_in(copy)

        assert documents.checkpoints() == {0: 4, 1: 0}
        check = documents.scratch_copy("verify")
        check.install(2)
        try:
            with check.session(0, 0) as s:
                s.apply([doc("new", {})])
                s.advance(4)
            assert documents.diff(check, 10) == []
        finally:
            check.discard()
