"""Projections without I/O: handlers, compaction, validation in log order, parking, poison isolation."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest

from syncbackbone.domain.documents import (
    EVENT_TYPES,
    DocumentCreated,
    DocumentDeleted,
    DocumentEvent,
    DocumentPatched,
    DocumentReplaced,
)
from syncbackbone.domain.errors import UnknownSchema
from syncbackbone.domain.records import EventMeta, NewEvent, Position, StoredEvent
from syncbackbone.projections.batch import Tracker, apply_batch, plan
from syncbackbone.projections.builtin import AUDIT, CHANGES, DOCUMENTS
from syncbackbone.projections.changes import Append, MergeJson, Upsert, compact
from syncbackbone.projections.errors import ChangeRejected
from syncbackbone.projections.ports import DeadEvent, DeadLetterEntry, ReadModelSession

DECODED: dict[tuple[str, int], DocumentEvent] = {}


def stored(agg: str, version: int, event: DocumentEvent, offset: int = 0, partition: int = 0) -> StoredEvent:
    """A stored event whose payload the test decoder maps back to ``event``."""
    DECODED[(agg, version)] = event
    meta = EventMeta(event_id=f"e{offset}", causation_id=f"cmd-{agg}-{version}", actor="ann", occurred_at_ms=1000)
    return StoredEvent(NewEvent(agg, version, event.type, b"", meta), Position(partition, offset), 2000)


def decode(s: StoredEvent) -> DocumentEvent:
    found = DECODED.get((s.aggregate_id, s.version))
    if found is None:
        raise UnknownSchema(f"cannot read {s.aggregate_id} v{s.version}")
    return found


def log_of(*items: tuple[str, int, DocumentEvent]) -> list[StoredEvent]:
    return [stored(agg, v, e, offset=i) for i, (agg, v, e) in enumerate(items)]


class FakeSession(ReadModelSession):
    """An in-memory session that refuses JSON containing NUL, as PostgreSQL's jsonb does."""

    def __init__(self, seen: Mapping[str, int] | None = None, parked: Collection[str] = ()) -> None:
        self._seen, self._parked = dict(seen or {}), set(parked)
        self.applied: list[Any] = []
        self.recorded: tuple[dict[str, int], list[DeadEvent]] = ({}, [])

    def seen(self, aggregate_ids: Collection[str]) -> dict[str, int]:
        return {a: v for a, v in self._seen.items() if a in aggregate_ids}

    def parked(self, aggregate_ids: Collection[str]) -> set[str]:
        return self._parked & set(aggregate_ids)

    def apply(self, changes: Sequence[Any]) -> None:
        if any("\\u0000" in json.dumps(c.row, default=str) for c in changes):
            raise ChangeRejected("NUL in JSON")
        self.applied.extend(changes)

    def record(self, seen: Mapping[str, int], dead: Sequence[DeadEvent]) -> None:
        self.recorded = (dict(seen), list(dead))

    def open_letters(self, aggregate_id: str) -> list[DeadLetterEntry]:
        return []

    def resolve(self, seqs: Collection[int], resolution: str) -> None:
        pass

    def advance(self, next_offset: int) -> None:
        pass


def test_document_handlers_upsert_on_create_and_merge_on_patch() -> None:
    events = log_of(("n/a", 1, DocumentCreated({"t": 1})), ("n/a", 2, DocumentPatched({"u": 2}, ("t",))))
    out = plan(DOCUMENTS, events, Tracker({}, set()), decode)

    upsert, merge = out.changes
    assert isinstance(upsert, Upsert) and upsert.row["data"] == {"t": 1} and upsert.row["version"] == 1
    assert isinstance(merge, MergeJson) and (merge.set, merge.unset) == ({"u": 2}, ("t",))


def test_compaction_folds_a_create_and_patches_into_one_upsert_of_the_final_state() -> None:
    events = log_of(
        ("n/a", 1, DocumentCreated({"t": 1, "x": 0})),
        ("n/a", 2, DocumentPatched({"u": 2}, ("x",))),
        ("n/a", 3, DocumentPatched({"x": 5}, ("u",))),
    )
    changes = plan(DOCUMENTS, events, Tracker({}, set()), decode).changes
    (batch,) = compact(changes, DOCUMENTS.tables_by_name)

    assert batch.merges == [] and len(batch.upserts) == 1
    assert batch.upserts[0]["data"] == {"t": 1, "x": 5} and batch.upserts[0]["version"] == 3


def test_compaction_merges_successive_patches_of_a_row_it_has_not_seen() -> None:
    events = log_of(("n/a", 4, DocumentPatched({"a": 1, "b": 1})), ("n/a", 5, DocumentPatched({"c": 1}, ("a",))))
    changes = plan(DOCUMENTS, events, Tracker({"n/a": 3}, set()), decode).changes
    (batch,) = compact(changes, DOCUMENTS.tables_by_name)

    (merge,) = batch.merges
    assert merge.set == {"b": 1, "c": 1} and merge.unset == ("a",) and merge.row["version"] == 5


def test_a_delete_after_a_patch_leaves_a_tombstone() -> None:
    events = log_of(("n/a", 2, DocumentPatched({"a": 1})), ("n/a", 3, DocumentDeleted()))
    (batch,) = compact(plan(DOCUMENTS, events, Tracker({"n/a": 1}, set()), decode).changes, DOCUMENTS.tables_by_name)

    assert batch.merges == [] and batch.upserts[0]["deleted"] is True and batch.upserts[0]["data"] == {}


def test_the_change_feed_and_the_audit_append_one_row_per_event() -> None:
    events = log_of(("n/a", 1, DocumentCreated({"t": 1})), ("n/a", 2, DocumentReplaced({"t": 2})))
    feed = plan(CHANGES, events, Tracker({}, set()), decode).changes
    audit = plan(AUDIT, events, Tracker({}, set()), decode).changes

    assert [c.row["op"] for c in feed if isinstance(c, Append)] == ["created", "replaced"]
    assert [(c.row["version"], c.row["actor"], c.row["causation_id"]) for c in audit] == [
        (1, "ann", "cmd-n/a-1"),
        (2, "ann", "cmd-n/a-2"),
    ]


def test_the_audit_does_not_need_to_read_the_payload() -> None:
    unreadable = StoredEvent(NewEvent("n/z", 1, "DocumentCreated", b"?"), Position(0, 0), 0)
    out = plan(AUDIT, [unreadable], Tracker({}, set()), decode)

    assert out.applied == 1 and not out.dead


def test_the_first_record_of_a_version_wins_and_later_duplicates_are_skipped() -> None:
    first, duplicate = stored("n/a", 1, DocumentCreated({"v": "first"})), stored("n/a", 1, DocumentCreated({}), 1)
    DECODED[("n/a", 1)] = DocumentCreated({"v": "first"})
    out = plan(DOCUMENTS, [first, duplicate], Tracker({}, set()), decode)

    assert (out.applied, out.skipped) == (1, 1)
    assert [c.row["data"] for c in out.changes if isinstance(c, Upsert)] == [{"v": "first"}]


def test_versions_already_handled_in_an_earlier_batch_are_skipped() -> None:
    out = plan(DOCUMENTS, log_of(("n/a", 2, DocumentPatched({"a": 1}))), Tracker({"n/a": 2}, set()), decode)

    assert out.skipped == 1 and not out.changes


def test_an_event_that_cannot_be_decoded_is_dead_lettered_and_parks_its_aggregate_only() -> None:
    bad = StoredEvent(NewEvent("n/bad", 1, "DocumentCreated", b"?"), Position(0, 0), 0)
    rest = [stored("n/bad", 2, DocumentPatched({"a": 1}), 1), stored("n/ok", 1, DocumentCreated({"b": 1}), 2)]
    tracker = Tracker({}, set())
    out = plan(DOCUMENTS, [bad, *rest], tracker, decode)

    assert [(d.aggregate_id, d.version, d.parked) for d in out.dead] == [("n/bad", 1, False), ("n/bad", 2, True)]
    assert out.dead[0].error_type == "UnknownSchema"
    assert [c.row["id"] for c in out.changes] == ["ok"]
    assert tracker.parked == {"n/bad"} and tracker.changed() == {"n/bad": 2, "n/ok": 1}


def test_a_version_gap_is_dead_lettered_rather_than_applied_out_of_order() -> None:
    out = plan(DOCUMENTS, log_of(("n/a", 3, DocumentPatched({"a": 1}))), Tracker({"n/a": 1}, set()), decode)

    assert not out.changes and "version gap" in out.dead[0].error


def test_an_aggregate_parked_in_an_earlier_batch_stays_parked() -> None:
    out = plan(DOCUMENTS, log_of(("n/a", 2, DocumentPatched({"a": 1}))), Tracker({"n/a": 1}, {"n/a"}), decode)

    assert not out.changes and out.dead[0].parked


def test_a_change_the_store_refuses_is_isolated_by_bisection_and_the_rest_is_applied() -> None:
    events = log_of(*[(f"n/d{i}", 1, DocumentCreated({"i": i})) for i in range(7)])
    events.insert(4, stored("n/poison", 1, DocumentCreated({"s": "\x00"}), 99))
    events.append(stored("n/poison", 2, DocumentPatched({"s": "fine"}), 100))
    session = FakeSession()
    total = apply_batch(session, DOCUMENTS, events, decode)

    assert sorted(c.row["id"] for c in session.applied) == [f"d{i}" for i in range(7)]
    seen, dead = session.recorded
    assert [(d.aggregate_id, d.version, d.error_type, d.parked) for d in dead] == [
        ("n/poison", 1, "ChangeRejected", False),
        ("n/poison", 2, "Parked", True),
    ]
    assert seen["n/poison"] == 2 and total.applied == 7


@pytest.mark.parametrize("projection", [DOCUMENTS, CHANGES, AUDIT])
def test_every_builtin_projection_handles_every_document_event_type(projection: Any) -> None:
    assert projection.handles == set(EVENT_TYPES)
