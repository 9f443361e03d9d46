"""The client's retry pacing and circuit breaker, and its replica logic, without I/O."""

from __future__ import annotations

import random

import pytest

from syncbackbone.client.errors import CircuitOpen, ServerUnavailable
from syncbackbone.client.replica import apply_change, local_view
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.domain.documents import Document
from syncbackbone.domain.lww import CrdtPolicy
from syncbackbone.domain.policies import StrictPolicy


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter_below_it() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [min(1.0, 0.1 * 2**i) for i in range(8)]

    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.next_delay() <= 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail() -> None:
    raise ServerUnavailable("down")


def test_the_breaker_opens_after_repeated_failures_and_fails_fast_until_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, reset_after_s=10, clock=clock)
    for _ in range(3):
        with pytest.raises(ServerUnavailable):
            breaker.call(fail)
    calls = []

    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: calls.append(1))
    assert calls == []


def test_a_half_open_breaker_closes_on_a_good_probe_and_reopens_on_a_bad_one() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_after_s=10, clock=clock)
    with pytest.raises(ServerUnavailable):
        breaker.call(fail)
    clock.now = 10
    assert breaker.state == "half_open"
    with pytest.raises(ServerUnavailable):
        breaker.call(fail)
    assert breaker.state == "open"
    clock.now = 20

    assert breaker.call(lambda: "ok") == "ok" and breaker.state == "closed"


def test_pulled_changes_apply_in_version_order_and_older_ones_are_ignored() -> None:
    doc = Document("c", "d")
    doc = apply_change(doc, {"version": 1, "op": "created", "data": {"a": 1, "b": 2}})
    doc = apply_change(doc, {"version": 2, "op": "patched", "data": {"c": 3}, "unset": ["a"]})
    same = apply_change(doc, {"version": 2, "op": "replaced", "data": {}})

    assert same is doc and (doc.version, doc.data) == (2, {"b": 2, "c": 3})
    assert apply_change(doc, {"version": 3, "op": "deleted", "data": {}}).deleted


def test_pending_mutations_are_replayed_on_the_server_state_and_dead_ones_skipped() -> None:
    doc = Document("c", "d", 1, {"a": 1})
    pending = [
        {"seq": 1, "op": "patch", "data": {"b": 2}},
        {"seq": 2, "op": "create", "data": {"x": 1}},
        {"seq": 3, "op": "patch", "unset": ["a"]},
    ]

    assert local_view(doc, pending, StrictPolicy(), "me").data == {"b": 2}


def test_crdt_pending_deltas_join_onto_the_server_state() -> None:
    doc = Document("c", "d", 1, {"_sync": {"clocks": {}, "crdt": {"n": {"p": {"x": 4}, "n": {}}}}, "n": 4})
    view = local_view(
        doc, [{"seq": 1, "op": "patch", "crdt": {"n": {"p": {"me": 2}}}}], CrdtPolicy({"n": "counter"}), "me"
    )

    assert view.data["n"] == 6
