"""The lww, merge and crdt conflict policies, and their configuration, without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncbackbone.domain import documents as d
from syncbackbone.domain.errors import CommandRejected, ConfigurationError, VersionConflict
from syncbackbone.domain.hlc import Timestamp
from syncbackbone.domain.lww import CrdtPolicy, LwwPolicy
from syncbackbone.domain.merge import MergePolicy, three_way
from syncbackbone.domain.mutations import Change
from syncbackbone.domain.policy_config import policy_book

NEW = d.Document("notes", "n1")


def clock(wall: int, node: str = "a") -> str:
    return str(Timestamp(wall, 0, node))


def history(policy: Any, *changes: Change) -> tuple[d.Document, list[d.DocumentEvent]]:
    """The document after deciding and applying each change in turn, with every event."""
    doc, seen = NEW, []
    versions = [NEW]
    for change in changes:
        events = policy.decide(change, doc, lambda v: versions[v])
        doc = d.fold(doc, events)
        versions.append(doc)
        seen.extend(events)
    return doc, seen


def fields(doc: d.Document) -> dict[str, Any]:
    return {k: v for k, v in doc.data.items() if k != "_sync"}


def test_lww_keeps_per_field_the_write_with_the_later_clock_and_records_the_loss() -> None:
    doc, events = history(
        LwwPolicy(),
        Change("put", {"title": "a", "body": "x"}, base_version=0, clock=clock(10)),
        Change("patch", {"title": "late"}, base_version=1, clock=clock(30, "b")),
        Change("patch", {"title": "early", "body": "y"}, base_version=1, clock=clock(20, "c")),
    )

    assert fields(doc) == {"title": "late", "body": "y"}
    resolved = events[-1]
    assert isinstance(resolved, d.ConflictResolved) and resolved.policy == "lww"
    assert resolved.theirs["set"] == {"title": "early", "body": "y"} and resolved.ours["title"] == "late"
    assert resolved.decisions["title"].startswith("ours") and resolved.decisions["body"] == "theirs"


def test_lww_keeps_a_removal_as_a_tombstone_so_an_older_write_cannot_revive_the_field() -> None:
    doc, _ = history(
        LwwPolicy(),
        Change("put", {"tag": "x"}, base_version=0, clock=clock(10)),
        Change("patch", unset=("tag",), base_version=1, clock=clock(30)),
        Change("patch", {"tag": "revived"}, base_version=1, clock=clock(20, "b")),
    )

    assert "tag" not in doc.data and doc.version == 3


def test_a_command_without_a_clock_wins_over_every_clock_in_the_document() -> None:
    doc, _ = history(LwwPolicy(), Change("put", {"a": 1}, clock=clock(10**12)), Change("patch", {"a": 2}))

    assert fields(doc) == {"a": 2}


def test_merge_takes_fields_changed_on_one_side_and_settles_both_sided_ones_by_rule() -> None:
    policy = MergePolicy(fallback="server", rules={"n": "sum"})
    doc, events = history(
        policy,
        Change("put", {"title": "t", "body": "b", "n": 10}, base_version=0),
        Change("patch", {"title": "server title", "n": 12}, base_version=1),
        Change("put", {"title": "client title", "body": "client body", "n": 15}, base_version=1),
    )

    assert fields(doc) == {"title": "server title", "body": "client body", "n": 17}
    resolved = events[-1]
    assert isinstance(resolved, d.ConflictResolved) and resolved.base_version == 1
    assert resolved.decisions == {"body": "theirs", "n": "both changed: sum", "title": "both changed: server"}


def test_merge_of_a_put_removes_only_the_fields_the_client_removed() -> None:
    doc, _ = history(
        MergePolicy(),
        Change("put", {"a": 1, "b": 2}, base_version=0),
        Change("patch", {"c": 3}, base_version=1),
        Change("put", {"a": 1}, base_version=1),
    )

    assert fields(doc) == {"a": 1, "c": 3}


def test_a_stale_delete_is_rejected_under_every_policy_so_edits_win() -> None:
    for policy in (LwwPolicy(), MergePolicy(), CrdtPolicy({})):
        doc, _ = history(policy, Change("put", {"a": 1}, base_version=0), Change("patch", {"a": 2}, base_version=1))
        with pytest.raises(VersionConflict):
            policy.decide(Change("delete", base_version=1), doc)
        assert policy.decide(Change("delete", base_version=2), doc) == [d.DocumentDeleted()]


def test_crdt_fields_join_deltas_and_plain_fields_stay_lww() -> None:
    policy = CrdtPolicy({"likes": "counter", "tags": "orset"})
    doc, events = history(
        policy,
        Change("patch", {"title": "x"}, base_version=0, clock=clock(1), crdt={"likes": {"p": {"a": 2}}}),
        Change("patch", base_version=1, crdt={"likes": {"p": {"b": 1}}, "tags": {"a": {'"red"': ["b:1"]}}}),
        Change("patch", base_version=1, crdt={"likes": {"n": {"c": 1}}, "tags": {"a": {'"blue"': ["c:1"]}}}),
    )

    assert fields(doc) == {"title": "x", "likes": 2, "tags": ["blue", "red"]}
    assert isinstance(events[-1], d.ConflictResolved) and events[-1].decisions == {"likes": "join", "tags": "join"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (Change("patch", {"likes": 3}), "are CRDTs"),
        (Change("patch", crdt={"title": {"v": 1}}), "not a CRDT field"),
        (Change("patch", crdt={"likes": {"p": {"a": "many"}}}), "not a counter delta"),
        (Change("patch", {"_sync": {}}), "reserved"),
    ],
)
def test_changes_a_crdt_collection_cannot_take_are_rejected_with_the_reason(change: Change, message: str) -> None:
    with pytest.raises(CommandRejected, match=message):
        CrdtPolicy({"likes": "counter"}).decide(change, NEW)


def test_a_patch_of_a_deleted_document_is_rejected_but_a_put_recreates_it() -> None:
    doc, _ = history(MergePolicy(), Change("put", {"a": 1}, base_version=0), Change("delete", base_version=1))
    with pytest.raises(CommandRejected, match="was deleted"):
        MergePolicy().decide(Change("patch", {"a": 2}, base_version=2), doc)
    assert MergePolicy().decide(Change("put", {"a": 2}, base_version=2), doc) == [d.DocumentCreated({"a": 2})]


VALUES = st.one_of(st.none(), st.integers(0, 3))
DOCS = st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3), max_size=4)


@given(base=DOCS, ours=DOCS, theirs=DOCS)
def test_a_three_way_merge_keeps_every_one_sided_change(
    base: dict[str, int], ours: dict[str, int], theirs: dict[str, int]
) -> None:
    set_ = {k: v for k, v in theirs.items() if base.get(k) != v}
    unset = [k for k in base if k not in theirs]
    outcome = three_way(base, ours, set_, unset, {}, "client")
    merged = {k: v for k, v in ours.items() if k not in outcome.unset} | outcome.set

    for name in base.keys() | ours.keys() | theirs.keys():
        if ours.get(name) == base.get(name):
            assert merged.get(name) == theirs.get(name)
        elif theirs.get(name) == base.get(name):
            assert merged.get(name) == ours.get(name)


@given(base=DOCS, a=DOCS, b=DOCS)
def test_a_three_way_merge_with_the_max_rule_is_commutative(
    base: dict[str, int], a: dict[str, int], b: dict[str, int]
) -> None:
    def merge(ours: dict[str, int], theirs: dict[str, int]) -> dict[str, int]:
        set_ = {k: v for k, v in theirs.items() if base.get(k) != v}
        outcome = three_way(base, ours, set_, [k for k in base if k not in theirs], {}, "max")
        return {k: v for k, v in ours.items() if k not in outcome.unset} | outcome.set

    common = {k for k in a.keys() & b.keys()} | (base.keys() - a.keys() - b.keys())
    assert {k: v for k, v in merge(a, b).items() if k in common} == {
        k: v for k, v in merge(b, a).items() if k in common
    }


def test_the_configuration_gives_each_collection_its_policy_and_refuses_nonsense() -> None:
    book = policy_book({"notes": "lww", "tasks": {"policy": "merge", "fields": {"n": "sum"}}, "*": "crdt"})

    assert [book.for_collection(c).name for c in ("notes", "tasks", "other")] == ["lww", "merge", "crdt"]
    assert book.for_collection("x").name == "crdt" and policy_book(None).for_collection("x").name == "strict"
    for bad in (
        {"a": "fifo"},
        {"a": {"policy": "merge", "fallback": "coin"}},
        {"a": {"policy": "lww", "x": 1}},
        {"a": 3},
    ):
        with pytest.raises(ConfigurationError):
            policy_book(bad)
