"""The one value check (NUL, NaN, Infinity, lone surrogates, nesting), the reserved field, and the
limits on a change (size, clocks, CRDT replicas and steps), in the domain and through the command models."""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncbackbone.commands.handlers import handle
from syncbackbone.commands.models import ApplyMutation, PatchDocument, parse_command
from syncbackbone.domain import documents as d
from syncbackbone.domain.errors import ClockSkew, CommandRejected, InvalidInput, TooLarge, rejection_code
from syncbackbone.domain.hlc import MAX_COUNTER, MAX_WALL_MS, PATTERN, HybridClock, Timestamp
from syncbackbone.domain.limits import Limits, check_change, check_steps
from syncbackbone.domain.policy_config import policy_book
from syncbackbone.domain.values import MAX_DEPTH, checked_value, json_size, value_problem

NOW = 1_700_000_000_000
LIMITS = Limits(max_document_bytes=2048, max_clock_skew_ms=60_000, max_counter_step=100, now_ms=lambda: NOW)


def nested(depth: int) -> Any:
    """Objects nested ``depth`` deep (a scalar inside the innermost)."""
    value: Any = 0
    for _ in range(depth):
        value = {"d": value}
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"t": "a\x00b"}, "t holds a NUL character"),
        ({"a\x00": 1}, "has a key that holds a NUL character"),
        ({"list": [1, {"x": "\x00"}]}, "list[1].x holds a NUL character"),
        ({"n": float("nan")}, "n is nan"),
        ({"n": [float("-inf")]}, "n[0] is -inf"),
        ({"s": "\ud800"}, "s holds a lone surrogate"),
        ({"when": object()}, "when is a object, not a JSON value"),
        ({"n": 10**4000}, "n is an integer over 1024 bits"),
        (nested(MAX_DEPTH + 1), "nests deeper than 32 levels"),
    ],
)
def test_a_value_that_would_freeze_a_read_model_is_refused_with_a_one_line_reason(value: Any, reason: str) -> None:
    problem = value_problem(value, "data")

    assert problem is not None and reason in problem and "\n" not in problem
    with pytest.raises(InvalidInput):
        checked_value(value)


def test_ordinary_json_and_nesting_of_exactly_32_levels_pass() -> None:
    value = {"s": "héllo ✓", "n": [1, 2.5, True, None], "deep": nested(MAX_DEPTH - 1)}

    assert value_problem(value) is None and checked_value(value) is value


def test_a_value_nested_a_million_deep_is_refused_not_a_recursion_error() -> None:
    value: Any = []
    for _ in range(1_000_000):
        value = [value]

    assert "nests deeper" in (value_problem(value) or "")


def test_a_key_with_a_control_character_still_gives_a_one_line_reason() -> None:
    problem = value_problem({"a\nb": {"c": float("nan")}}, "data") or ""

    assert "\n" not in problem and "a\\nb" in problem


@pytest.mark.parametrize(
    "fields",
    [
        {"data": {"t": "\x00"}},
        {"data": {"_sync": {"clocks": {}}}},
        {"unset": ["_sync"]},
        {"crdt": {"_sync": {"p": {"c": 1}}}},
        {"crdt": {"likes": {"p": {"c": float("inf")}}}},
        {"data": nested(40)},
    ],
)
def test_the_command_models_refuse_bad_values_and_the_reserved_field_as_invalid_input(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="invalid ApplyMutation") as raised:
        parse_command("ApplyMutation", {"collection": "c", "id": "d", **fields})

    assert "\n" not in str(raised.value)


def test_the_domain_refuses_the_reserved_field_under_the_strict_policy_too() -> None:
    doc = d.Document("c", "d", 1, {"a": 1})

    with pytest.raises(CommandRejected, match="reserved"):
        d.put(doc, {"_sync": 1})
    with pytest.raises(CommandRejected, match="reserved"):
        d.patch(doc, {}, ["_sync"])
    with pytest.raises(CommandRejected, match="reserved"):
        d.create(d.Document("c", "x"), {"_sync": {}})


def test_a_successor_at_the_end_of_the_text_form_stays_there_instead_of_overflowing() -> None:
    last = Timestamp(MAX_WALL_MS, MAX_COUNTER, "x")
    clock = HybridClock("me", last, now_ms=lambda: NOW)

    after = clock.now()

    assert str(after) == f"{MAX_WALL_MS}.{MAX_COUNTER}.me" and Timestamp.parse(str(after)) == after
    assert Timestamp(5, MAX_COUNTER, "x").successor("y") == Timestamp(6, 0, "y")
    assert re.match(PATTERN, str(Timestamp(MAX_WALL_MS - 1, MAX_COUNTER, "n").successor("n")))


def test_a_clock_further_ahead_than_the_skew_allows_is_clock_skew() -> None:
    ahead = str(Timestamp(NOW + 60_001, 0, "me"))

    with pytest.raises(ClockSkew, match="60,000 ms") as raised:
        check_change({}, {}, ahead, "me", LIMITS)
    check_change({}, {}, str(Timestamp(NOW + 60_000, 0, "me")), "me", LIMITS)
    assert rejection_code(raised.value) == "clock_skew"


def test_a_clock_or_a_register_clock_of_another_node_is_refused() -> None:
    theirs = str(Timestamp(NOW, 0, "alice"))

    with pytest.raises(InvalidInput, match="not of the pushing client"):
        check_change({}, {}, theirs, "mallory", LIMITS)
    with pytest.raises(InvalidInput, match="field 'r'"):
        check_change({}, {"r": {"v": 1, "c": theirs}}, None, "mallory", LIMITS)


def test_a_counter_delta_may_only_name_the_changes_own_client() -> None:
    with pytest.raises(InvalidInput, match="may only advance its own counter, not 'bob'"):
        check_change({}, {"n": {"n": {"bob": 10**40}}}, None, "mallory", LIMITS)
    with pytest.raises(InvalidInput, match="a change without a client"):
        check_change({}, {"n": {"p": {"bob": 1}}}, None, None, LIMITS)
    check_change({}, {"n": {"p": {"mallory": 3}, "n": {}}}, None, "mallory", LIMITS)


def test_a_counter_may_move_by_at_most_the_step_per_change() -> None:
    doc = d.Document("c", "d", 1, {"_sync": {"clocks": {}, "crdt": {"n": {"p": {"me": 50}, "n": {}}}}, "n": 50})

    check_steps({"n": {"p": {"me": 150}}}, doc, LIMITS)
    with pytest.raises(CommandRejected, match="at most 100 per change"):
        check_steps({"n": {"p": {"me": 151}}}, doc, LIMITS)
    with pytest.raises(CommandRejected):
        check_steps({"n": {"n": {"me": 101}}}, doc, LIMITS)


def test_a_change_over_the_document_size_is_too_large() -> None:
    with pytest.raises(TooLarge, match="the limit is 2,048") as raised:
        check_change({"blob": "x" * 3000}, {}, None, None, LIMITS)

    assert rejection_code(raised.value) == "too_large"


def test_the_handler_refuses_a_document_that_would_grow_over_the_limit_but_lets_one_shrink() -> None:
    book = policy_book({}, LIMITS)
    big = d.Document("c", "d", 1, {"a": "x" * 1500, "b": "y" * 1500})
    grow = PatchDocument(collection="c", id="d", data={"c": "z" * 100})
    shrink = PatchDocument(collection="c", id="d", unset=["a"])

    with pytest.raises(TooLarge, match="would take"):
        handle(grow, big, book)
    assert json_size(d.fold(big, handle(shrink, big, book)).data) < json_size(big.data)


def test_the_handler_checks_what_the_edge_checks_as_a_second_line() -> None:
    book = policy_book({"b": {"policy": "crdt", "fields": {"n": "counter"}}}, LIMITS)
    forged = ApplyMutation.model_construct(
        command_id="m:1",
        collection="b",
        id="d",
        expected_version=None,
        client_id="m",
        op="patch",
        data={},
        unset=[],
        clock=None,
        crdt={"n": {"p": {"alice": 5}}},
    )
    poisoned = ApplyMutation.model_construct(
        command_id="m:2",
        collection="b",
        id="d",
        expected_version=None,
        client_id="m",
        op="patch",
        data={"t": "\x00"},
        unset=[],
        clock=None,
        crdt={},
    )

    with pytest.raises(InvalidInput, match="its own counter"):
        handle(forged, d.Document("b", "d"), book)
    with pytest.raises(InvalidInput, match="NUL"):
        handle(poisoned, d.Document("b", "d"), book)


def test_a_change_within_the_limits_is_decided_as_before() -> None:
    book = policy_book({"b": {"policy": "crdt", "fields": {"n": "counter"}}}, LIMITS)
    mutation = ApplyMutation(
        command_id="me:1",
        collection="b",
        id="d",
        client_id="me",
        crdt={"n": {"p": {"me": 3}}},
        clock=str(Timestamp(NOW, 0, "me")),
    )

    doc = d.fold(d.Document("b", "d"), handle(mutation, d.Document("b", "d"), book))

    assert doc.data["n"] == 3
