"""CRDT field types and hybrid logical clocks: joins are commutative, associative and idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncbackbone.domain import crdt
from syncbackbone.domain.errors import CommandRejected, InvalidInput
from syncbackbone.domain.hlc import HybridClock, Timestamp

REPLICAS = st.sampled_from(["a", "b", "c"])
TALLY = st.dictionaries(REPLICAS, st.integers(0, 50), max_size=3)
COUNTERS = st.fixed_dictionaries({"p": TALLY, "n": TALLY})
TAGS = st.lists(st.sampled_from([f"t{i}" for i in range(6)]), max_size=4, unique=True)
ORSETS = st.fixed_dictionaries(
    {"a": st.dictionaries(st.sampled_from(['"x"', '"y"', "1"]), TAGS.filter(bool), max_size=3), "r": TAGS}
)
CLOCKS = st.builds(lambda w, c, n: str(Timestamp(w, c, n)), st.integers(0, 5), st.integers(0, 3), REPLICAS)
REGISTERS = st.builds(lambda v, c: {"v": v, "c": c}, st.integers(0, 3), CLOCKS)
TYPES = [
    ("counter", COUNTERS),
    ("orset", ORSETS),
    ("register", REGISTERS),
    ("custom:max", st.builds(dict, v=st.integers())),
]


def canonical(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    """A state with empty entries dropped, so equal states compare equal."""
    return crdt.crdt_type(kind).join(state, state)


@pytest.mark.parametrize(("kind", "states"), TYPES, ids=[k for k, _ in TYPES])
@given(data=st.data())
def test_joins_are_commutative_associative_and_idempotent(kind: str, states: Any, data: st.DataObject) -> None:
    join = crdt.crdt_type(kind).join
    a, b, c = data.draw(states), data.draw(states), data.draw(states)

    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))
    assert join(join(a, b), b) == join(a, b)
    assert canonical(kind, join(a, a)) == canonical(kind, a)


@given(st.lists(st.tuples(REPLICAS, st.integers(-5, 5)), max_size=20), st.randoms())
def test_a_counter_counts_every_increment_once_whatever_order_deltas_arrive_in(
    ops: list[tuple[str, int]], rnd: Any
) -> None:
    local: dict[str, dict[str, Any]] = {r: {} for r in "abc"}
    deltas = []
    for replica, amount in ops:
        delta = crdt.counter_delta(local[replica], replica, amount)
        local[replica] = crdt.counter_join(local[replica], delta)
        deltas.append(delta)
    rnd.shuffle(deltas)
    server: dict[str, Any] = {}
    for delta in deltas + deltas[: len(deltas) // 2]:  # some delivered twice
        server = crdt.counter_join(server, delta)

    assert crdt.counter_value(server) == sum(amount for _, amount in ops)


def test_an_orset_keeps_an_element_added_concurrently_with_its_removal() -> None:
    seen = crdt.orset_join({}, crdt.orset_add_delta("x", "a:1"))
    removal = crdt.orset_remove_delta(seen, "x")
    concurrent_add = crdt.orset_add_delta("x", "b:1")

    assert crdt.orset_value(crdt.orset_join(seen, removal)) == []
    assert crdt.orset_value(crdt.orset_join(crdt.orset_join(seen, concurrent_add), removal)) == ["x"]


def test_a_register_keeps_the_write_with_the_later_clock() -> None:
    early, late = {"v": "old", "c": str(Timestamp(1, 0, "b"))}, {"v": "new", "c": str(Timestamp(1, 1, "a"))}

    assert crdt.register_join(early, late) == crdt.register_join(late, early) == late


def test_a_custom_resolver_can_be_registered_and_used_as_a_field_type() -> None:
    crdt.register_resolver("longest", lambda ours, theirs, base: max(ours, theirs, key=lambda s: (len(s), s)))

    assert crdt.crdt_type("custom:longest").join({"v": "ab"}, {"v": "abc"}) == {"v": "abc"}
    with pytest.raises(CommandRejected, match="no resolver named 'nope'"):
        crdt.crdt_type("custom:nope")


@pytest.mark.parametrize(
    ("kind", "delta"),
    [("counter", {"p": {"a": -1}}), ("orset", {"a": {"x": "t1"}}), ("register", {"v": 1, "c": "noon"}), ("counter", 3)],
)
def test_a_malformed_delta_is_rejected_naming_the_field(kind: str, delta: Any) -> None:
    with pytest.raises(CommandRejected, match="field 'f'"):
        crdt.checked_delta(kind, "f", delta)


def test_the_hybrid_clock_never_goes_backwards_and_moves_past_what_it_observes() -> None:
    wall = iter([100, 90, 90, 95])
    clock = HybridClock("a", now_ms=lambda: next(wall))
    first, second = clock.now(), clock.now()
    clock.observe(Timestamp(500, 7, "z"))
    third, fourth = clock.now(), clock.now()

    assert first < second < Timestamp(500, 7, "z") < third < fourth
    assert str(third) == "000000000000500.00008.a" and Timestamp.parse(str(third)) == third


@given(st.lists(st.builds(Timestamp, st.integers(0, 10**12), st.integers(0, 99999), REPLICAS), min_size=2))
def test_timestamp_text_sorts_like_timestamps(stamps: list[Timestamp]) -> None:
    assert sorted(stamps, key=str) == sorted(stamps)


def test_a_malformed_clock_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a hybrid logical timestamp"):
        Timestamp.parse("yesterday")
