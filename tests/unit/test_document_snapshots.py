"""Document snapshots through eventsourcing's Snapshot: round trip, class_version upcasting, refusals."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

from syncbackbone.commands.snapshots import SnapshotPolicy
from syncbackbone.domain.documents import Document
from syncbackbone.domain.snapshots import (
    DocumentSnapshot,
    DocumentState,
    SnapshotUnusable,
    restore,
)

DOC = Document("notes", "n1", 7, {"title": "hi", "tags": ["a"], "n": {"x": 1.5, "y": None}}, False)


class DocumentStateV2(DocumentState):
    """Newer code: ``data`` is kept as ``fields``; snapshots of v1 are upcast."""

    class_version = 2

    def __init__(self, doc: Document) -> None:
        super().__init__(doc)
        self.fields = self.__dict__.pop("data")

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["fields"] = state.pop("data")

    def document(self) -> Document:
        return Document(self.collection, self.doc_id, self._version, dict(self.fields), bool(self.deleted))


class DocumentStateV3(DocumentStateV2):
    """Code two versions on that forgot its upcaster from v2."""

    class_version = 3


def mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder)


def test_a_snapshot_restores_the_document_it_was_taken_of() -> None:
    snapshot = DocumentSnapshot.of(DOC)
    assert snapshot.originator_version == 7
    assert "_id" not in snapshot.state and "_version" not in snapshot.state
    assert restore(snapshot, "notes/n1") == DOC


def test_a_snapshot_survives_the_eventsourcing_mapper_round_trip() -> None:
    m = mapper()
    stored = m.to_stored_event(DocumentSnapshot.of(DOC))
    again = m.to_domain_event(stored)
    assert isinstance(again, DocumentSnapshot)
    assert restore(again, "notes/n1") == DOC


def test_a_snapshot_taken_by_older_code_is_upcast_by_the_current_class_version() -> None:
    old = DocumentSnapshot.of(DOC)  # class_version 1: no class_version in the state
    assert restore(old, "notes/n1", DocumentStateV2) == DOC
    new = DocumentSnapshot.of(DOC, DocumentStateV2)
    assert new.state["class_version"] == 2 and "fields" in new.state
    assert restore(new, "notes/n1", DocumentStateV2) == DOC


def test_a_snapshot_taken_by_newer_code_is_refused_with_its_class_version() -> None:
    newer = DocumentSnapshot.of(DOC, DocumentStateV2)
    with pytest.raises(SnapshotUnusable, match="newer code .*class_version 2.* up to 1"):
        restore(newer, "notes/n1")


def test_a_snapshot_without_an_upcaster_for_its_class_version_is_refused() -> None:
    v2 = DocumentSnapshot.of(DOC, DocumentStateV2)
    with pytest.raises(SnapshotUnusable, match="no upcaster from class_version 2"):
        restore(v2, "notes/n1", DocumentStateV3)


def test_a_snapshot_of_another_aggregate_is_refused() -> None:
    with pytest.raises(SnapshotUnusable, match="another aggregate"):
        restore(DocumentSnapshot.of(DOC), "notes/n2")


def test_a_snapshot_whose_state_lost_a_field_is_refused_with_the_field() -> None:
    snapshot = DocumentSnapshot.of(DOC)
    broken = dataclasses.replace(snapshot, state={k: v for k, v in snapshot.state.items() if k != "data"})
    with pytest.raises(SnapshotUnusable, match="does not fit DocumentState"):
        restore(broken, "notes/n1")


def test_a_snapshot_naming_a_foreign_class_is_refused_before_anything_is_imported() -> None:
    foreign = dataclasses.replace(DocumentSnapshot.of(DOC), topic="os:system")
    with pytest.raises(SnapshotUnusable, match="not a document state"):
        restore(foreign, "notes/n1")


def test_the_snapshot_policy_gives_k_per_aggregate_type_with_a_default() -> None:
    policy = SnapshotPolicy(every=100, per_type={"document": 25})
    assert policy.every("document") == 25
    assert policy.every("invoice") == 100
