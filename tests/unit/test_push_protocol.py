"""The push protocol's pure parts: cursors that cannot crash, results that cannot amplify, rebasing
that cannot lose an update (server side and in the SDK's outbox), and names that fit their ids."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from syncbackbone.client.store import LocalStore
from syncbackbone.commands.models import MAX_ID, ApplyMutation
from syncbackbone.commands.results import CommandResult, accepted, rejected
from syncbackbone.domain.documents import Document
from syncbackbone.domain.errors import InvalidInput
from syncbackbone.infra.app.auth import Principal
from syncbackbone.infra.app.cursors import decode_cursor, encode_cursor
from syncbackbone.infra.app.push_results import MAX_REASON, Pushed, answered, with_states
from syncbackbone.infra.app.sync import MAX_CLIENT, MAX_SEQ, chained, checked_client, rebased


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        b64(b"[" * 100_000 + b"]" * 100_000),
        b64(json.dumps({"v": 1, "g": 1, "p": {"a": [[[1]]]}}).encode()),
        b64(json.dumps({"v": 1, "g": True, "p": {"a": 1}}).encode()),
        b64(json.dumps({"v": 1, "p": {"a": -1}}).encode()),
        b64(json.dumps([1, 2]).encode()),
        b64(b"\xff\xfe"),
        "%%%",
        "é",
        "a" * 70_000,
    ],
)
def test_any_malformed_cursor_is_invalid_input_however_nested(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor is malformed"):
        decode_cursor(cursor)


def test_a_cursor_reads_back_as_it_was_written() -> None:
    cursor = decode_cursor(encode_cursor({"b": 3, "a": 0}, 7))

    assert (cursor.positions, cursor.generation) == ({"a": 0, "b": 3}, 7)


def test_a_client_name_must_leave_room_for_its_sequence_numbers_in_the_command_id() -> None:
    longest = "c" * MAX_CLIENT

    prefix = Principal("someone", "some-tenant", frozenset()).id_prefix  # every principal's is this long
    assert checked_client(longest) == longest and len(f"{prefix}{longest}:{MAX_SEQ}") == MAX_ID
    with pytest.raises(InvalidInput, match=f"the limit is {MAX_CLIENT}"):
        checked_client("c" * (MAX_CLIENT + 10))


def command(seq: int, base: int | None) -> ApplyMutation:
    return ApplyMutation(command_id=f"me:{seq}", collection="c", id="d", client_id="me", expected_version=base)


def result(seq: int, version: int, status: str = "accepted") -> CommandResult:
    if status == "accepted":
        return CommandResult(f"me:{seq}", "accepted", "c/d", version)
    return rejected(f"me:{seq}", "c/d", version, "no", "version_conflict")


def test_a_mutation_moves_onto_versions_this_push_made_one_after_the_other() -> None:
    queue = [command(2, 4), command(3, 4)]
    chain = chained(None, result(1, 5))

    queue = rebased(queue, chain)
    chain = chained(chain, result(2, 6))
    queue = rebased(queue[1:], chain)

    assert chain == (4, 6) and queue[0].expected_version == 6


def test_a_mutation_made_before_a_merge_with_someone_elses_change_keeps_its_base() -> None:
    queue = [command(2, 1)]

    merged = rebased(queue, chained(None, result(1, 3)))  # the first landed at 3: someone else made 2

    assert merged[0].expected_version == 1


def test_a_rejected_result_or_none_leaves_the_next_mutation_as_it_is() -> None:
    queue = [command(2, 1)]

    assert rebased(queue, chained(None, result(1, 1, "rejected"))) == queue
    assert rebased(queue, chained(None, None)) == queue


def loader(versions: dict[str, int], size: int = 10) -> Any:
    calls: list[list[str]] = []

    def load(ids: Collection[str]) -> dict[str, Document]:
        calls.append(sorted(ids))
        return {agg: Document("c", agg[2:], versions[agg], {"blob": "x" * size}) for agg in ids}

    load.calls = calls  # type: ignore[attr-defined]
    return load


def test_a_thousand_rejections_of_one_document_carry_its_state_once_loaded_once() -> None:
    pushed = [answered(i, f"me:{i}", result(i, 1, "rejected"), False) for i in range(1000)]
    load = loader({"c/d": 1})

    with_states(pushed, ["c/d"] * 1000, load, budget=10_000)

    assert [i for i, p in enumerate(pushed) if p.state is not None] == [999]
    assert load.calls == [["c/d"]]


def test_only_the_last_decided_result_of_a_document_carries_its_state() -> None:
    pushed = [
        answered(1, "me:1", accepted("me:1", "c/d", []), False),
        answered(2, "me:2", accepted("me:2", "c/d", []), False),
        Pushed(3, "rejected", code="invalid"),
        answered(4, "me:4", None, False),
    ]
    load = loader({"c/d": 2, "c/e": 0})

    with_states(pushed, ["c/d", "c/d", None, "c/e"], load, budget=10_000)

    assert [p.state is not None for p in pushed] == [False, True, False, False]
    assert pushed[3].retryable and load.calls == [["c/d"]]


def test_states_stop_at_the_budget_and_reasons_are_cut() -> None:
    long = rejected("me:0", "c/a", 1, "r" * 9999, "rejected")
    pushed = [answered(i, f"me:{i}", long if i == 0 else result(i, 1, "rejected"), False) for i in range(3)]
    ids = ["c/a", "c/b", "c/e"]

    with_states(pushed, ids, loader(dict.fromkeys(ids, 1), size=400), budget=900)

    assert [p.state is not None for p in pushed] == [True, True, False]
    assert len(pushed[0].reason or "") == MAX_REASON


def test_the_sdk_moves_later_mutations_only_over_a_version_nothing_else_came_before(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    with store.transaction() as db:
        for seq in (1, 2, 3):
            store.enqueue(db, {"seq": seq, "collection": "c", "id": "d", "op": "patch", "base_version": 1})
        store.rebase(db, "c", "d", 1, 2)  # seq 1 landed at 2, right on 1: 2 and 3 were made on top of it
    rebased_once = [m["base_version"] for m in store.pending()]
    with store.transaction() as db:
        store.rebase(db, "c", "d", 2, 5)  # seq 2 was merged at 5: others wrote 3 and 4
    store.close()

    assert rebased_once == [1, 2, 2]
    assert [m["base_version"] for m in LocalStore(tmp_path / "c.db").pending()] == [1, 2, 2]
