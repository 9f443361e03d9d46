"""The push protocol's pure parts: cursors that cannot crash, results that cannot amplify, rebasing
that cannot lose an update (in the processor and in the SDK's outbox), and names that fit their ids."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from syncbackbone.client.store import LocalStore
from syncbackbone.commands.models import MAX_ID, ApplyMutation
from syncbackbone.commands.rebasing import Run, after_accepting, rebased, run_of
from syncbackbone.commands.results import CommandResult, accepted, rejected
from syncbackbone.domain.documents import Document
from syncbackbone.domain.errors import InvalidInput
from syncbackbone.domain.records import EventMeta, NewEvent, Position, StoredEvent
from syncbackbone.infra.app.auth import Principal
from syncbackbone.infra.app.cursors import decode_cursor, encode_cursor
from syncbackbone.infra.app.push_results import MAX_REASON, Pushed, answered, with_states
from syncbackbone.infra.app.sync import MAX_CLIENT, MAX_SEQ, checked_client


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


def command(seq: int, base: int | None, client: str = "p.me") -> ApplyMutation:
    return ApplyMutation(command_id=f"{client}:{seq}", collection="c", id="d", client_id="me", expected_version=base)


def result(seq: int, version: int, status: str = "accepted") -> CommandResult:
    if status == "accepted":
        return CommandResult(f"me:{seq}", "accepted", "c/d", version)
    return rejected(f"me:{seq}", "c/d", version, "no", "version_conflict")


def test_a_mutation_moves_onto_versions_its_own_client_made_one_after_the_other() -> None:
    run = after_accepting(None, "p.me:1", 4, 5)  # seq 1 took the document from 4 to 5

    second = rebased(command(2, 4), 5, run)
    run = after_accepting(run, "p.me:2", 5, 6)
    third = rebased(command(3, 4), 6, run)

    assert (second.expected_version, third.expected_version, run) == (5, 6, Run("p.me", 4, 6, 2))


def test_a_mutation_made_before_a_merge_with_someone_elses_change_keeps_its_base() -> None:
    run = after_accepting(None, "p.me:1", 2, 3)  # someone else made 2; seq 1 was merged on it at 3

    assert rebased(command(2, 1), 3, run).expected_version == 1
    assert rebased(command(2, 2), 3, run).expected_version == 3  # made after seeing 2: only its own lie between


def test_no_mutation_moves_over_another_clients_versions_or_a_version_made_after_the_run() -> None:
    run = after_accepting(None, "p.me:1", 1, 2)

    assert rebased(command(2, 1, client="p.you"), 2, run).expected_version == 1
    assert rebased(command(2, 1), 3, run).expected_version == 1  # someone wrote 3 after the run
    assert rebased(command(1, 1), 2, run).expected_version == 1  # not a later mutation of the client
    assert after_accepting(run, "f3b2c0ffee", 2, 3) is None  # a command that is no client's mutation ends it


def stored(version: int, causation: str) -> StoredEvent:
    event = NewEvent("c/d", version, "DocumentPatched", b"", EventMeta(causation_id=causation))
    return StoredEvent(event, Position(0, 0))


def test_a_cold_documents_run_is_read_back_from_its_events_as_far_as_one_client_made_them() -> None:
    events = [stored(3, "p.you:9"), stored(4, "p.me:1"), stored(5, "p.me:2")]

    assert run_of(events, 5) == Run("p.me", 3, 5, 2)
    assert run_of(events[1:], 5) == Run("p.me", 3, 5, 2)
    assert run_of(events, 6) is None
    assert run_of([stored(4, "p.me:3"), stored(5, "p.me:2")], 5) == Run("p.me", 4, 5, 2)


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


def test_only_the_last_merged_or_rejected_result_of_a_document_carries_its_state() -> None:
    pushed = [
        answered(1, "me:1", accepted("me:1", "c/d", []), True),
        answered(2, "me:2", result(2, 3, "rejected"), False),
        answered(3, "me:3", accepted("me:3", "c/d", []), False),
        Pushed(4, "rejected", code="invalid"),
        answered(5, "me:5", None, False),
        answered(6, "me:6", accepted("me:6", "c/e", []), False),
    ]
    load = loader({"c/d": 2, "c/e": 0})

    with_states(pushed, ["c/d", "c/d", "c/d", None, "c/e", "c/e"], load, budget=10_000)

    assert [p.state is not None for p in pushed] == [False, True, False, False, False, False]
    assert pushed[4].retryable and load.calls == [["c/d"]]


def test_a_push_whose_mutations_were_all_applied_loads_no_state() -> None:
    pushed = [answered(i, f"me:{i}", accepted(f"me:{i}", "c/d", []), False) for i in range(3)]
    load = loader({"c/d": 3})

    with_states(pushed, ["c/d"] * 3, load, budget=10_000)

    assert [p.state for p in pushed] == [None] * 3 and load.calls == []


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
