"""The Document aggregate and the strict policy, without I/O."""

from __future__ import annotations

import pytest

from syncbackbone.commands.handlers import handle
from syncbackbone.commands.models import CreateDocument, PatchDocument, PutDocument, parse_command
from syncbackbone.domain import documents as d
from syncbackbone.domain.errors import CommandRejected, InvalidInput, VersionConflict
from syncbackbone.domain.policies import PolicyBook, StrictPolicy

NEW = d.Document("notes", "n1")


def test_create_then_patch_folds_to_merged_fields() -> None:
    doc = d.fold(NEW, d.create(NEW, {"a": 1, "b": 2}))
    doc = d.fold(doc, d.patch(doc, {"c": 3}, ["a"]))
    assert (doc.version, doc.data) == (2, {"b": 2, "c": 3})


def test_put_creates_a_missing_document_and_replaces_an_existing_one() -> None:
    assert d.put(NEW, {"x": 1}) == [d.DocumentCreated({"x": 1})]
    doc = d.fold(NEW, [d.DocumentCreated({"x": 1})])
    assert d.put(doc, {"y": 2}) == [d.DocumentReplaced({"y": 2})]


def test_creating_an_existing_document_is_rejected() -> None:
    doc = d.fold(NEW, d.create(NEW, {}))
    with pytest.raises(CommandRejected, match="already exists"):
        d.create(doc, {})


def test_a_deleted_document_can_be_created_again_at_the_next_version() -> None:
    doc = d.fold(NEW, [d.DocumentCreated({"a": 1}), d.DocumentDeleted()])
    assert doc.deleted and not doc.exists
    doc = d.fold(doc, d.create(doc, {"b": 1}))
    assert (doc.version, doc.data, doc.deleted) == (3, {"b": 1}, False)


def test_patching_or_deleting_a_missing_document_is_rejected() -> None:
    with pytest.raises(CommandRejected):
        d.patch(NEW, {"a": 1}, [])
    with pytest.raises(CommandRejected):
        d.delete(NEW)


def test_strict_policy_rejects_a_stale_expected_version_with_the_current_one() -> None:
    doc = d.fold(NEW, [d.DocumentCreated({}), d.DocumentPatched({"a": 1})])
    with pytest.raises(VersionConflict) as caught:
        StrictPolicy().check(doc, 1)
    assert (caught.value.expected, caught.value.current) == (1, 2)
    StrictPolicy().check(doc, 2)
    StrictPolicy().check(doc, None)


def test_expected_version_zero_means_the_document_must_not_exist() -> None:
    cmd = PutDocument(collection="notes", id="n1", data={}, expected_version=0)
    assert handle(cmd, NEW, PolicyBook()) == [d.DocumentCreated({})]
    doc = d.fold(NEW, [d.DocumentCreated({})])
    with pytest.raises(VersionConflict):
        handle(cmd, doc, PolicyBook())


def test_handlers_route_by_command_type() -> None:
    doc = d.fold(NEW, [d.DocumentCreated({"a": 1})])
    events = handle(PatchDocument(collection="notes", id="n1", data={"b": 2}, unset=["a"]), doc, PolicyBook())
    assert events == [d.DocumentPatched({"b": 2}, ("a",))]
    assert handle(CreateDocument(collection="x", id="y", data={}), d.Document("x", "y"), PolicyBook())


def test_parse_command_names_every_invalid_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_command("PatchDocument", {"collection": "bad/name", "id": "", "expected_version": -1})
    message = str(caught.value)
    assert "collection" in message and "id" in message and "expected_version" in message


def test_parse_command_lists_known_types_for_an_unknown_one() -> None:
    with pytest.raises(InvalidInput, match="CreateDocument"):
        parse_command("FrobDocument", {})


def test_aggregate_ids_split_back_into_collection_and_id() -> None:
    assert d.split_aggregate_id(d.aggregate_id("notes", "n1")) == ("notes", "n1")
    with pytest.raises(InvalidInput):
        d.split_aggregate_id("no-slash")
