"""The damage cases of issue 11, each tried as an attacker would: over HTTP, against a real
``syncbackbone serve --http`` process on real PostgreSQL.

Each test sends what did lasting damage before (a pinned clock, ``_sync`` in a strict
document, a NUL, a forged CRDT replica, a flood of rejected mutations, a nested cursor, a
long client name, a rebase that lost a field), checks it is refused or harmless, and ends
with "nothing was lost or frozen": the victim's next edit reaches another subscribed SDK
client, and both still sync.

All seven failed on the code before the fixes (5664fdc): the pinned clock, the ``_sync``
write, the forged counter and the NUL were applied, NaN failed the whole push with a 400,
1,000 rejections carried 1,000 states, the nested cursor was a 500, and the queued put
was applied as up to date, deleting the other client's field.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import TEST_AUTH_SECRET, drop_namespace, user_env

from syncbackbone.client import SyncClient
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.infra.app.auth import issue_token
from syncbackbone.infra.app.sync import MAX_CLIENT
from syncbackbone.infra.common.net import free_port

from .harness import serve

POLICIES = {
    "notes": "lww",
    "boards": {"policy": "crdt", "fields": {"likes": "counter"}},
    "tasks": {"policy": "merge", "fallback": "client"},
    "*": "strict",
}
PINNED = "999999999999999.99999.mallory"


@dataclass
class Gateway:
    """The HTTP address of a running server, and the way in for attackers and SDK clients."""

    url: str
    folder: Path

    def token(self, client: str) -> str:
        return issue_token(TEST_AUTH_SECRET.encode(), client, "acme", ("read", "write"), client)

    def push(self, client: str, *mutations: Any) -> httpx.Response:
        """A push whose body is written with Python's json (so NaN and Infinity can be sent)."""
        body = json.dumps({"client": client, "mutations": list(mutations)}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token(client)}"}
        return httpx.post(f"{self.url}/sync/push", content=body, headers=headers, timeout=120)

    def results(self, client: str, *mutations: Any) -> list[dict[str, Any]]:
        response = self.push(client, *mutations)
        assert response.status_code == 200, response.text
        return list(response.json()["results"])

    def pull(self, client: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(client)}"}
        return httpx.get(f"{self.url}/sync/pull", params=params, headers=headers, timeout=30)

    def sdk(self, name: str, collection: str) -> SyncClient:
        """An SDK client subscribed to ``collection``, with fast retries."""
        breaker, backoff = CircuitBreaker(threshold=50, reset_after_s=0.05), Backoff(0.005, 0.05)
        path = self.folder / f"{name}.db"
        return SyncClient(path, self.url, [collection], name, breaker, backoff, token=self.token(name))


@pytest.fixture(scope="module")
def gateway(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    env = user_env(pg_dsn, namespace, SYNC_POLICIES=json.dumps(POLICIES), SYNC_AUTH_SECRET=TEST_AUTH_SECRET)
    port = free_port()
    proc = serve(env, port)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("damage"))
    finally:
        proc.terminate()
        proc.wait(30)
        drop_namespace(pg_dsn, namespace)


@pytest.fixture
def pair(gateway: Gateway) -> Iterator[Callable[[str], tuple[SyncClient, SyncClient]]]:
    """``pair(collection)``: the victim alice and the watcher bob, both subscribed to it; closed afterwards."""
    made: list[SyncClient] = []

    def make(collection: str) -> tuple[SyncClient, SyncClient]:
        tag = uuid.uuid4().hex[:6]
        alice, bob = gateway.sdk(f"alice-{tag}", collection), gateway.sdk(f"bob-{tag}", collection)
        made.extend((alice, bob))
        return alice, bob

    yield make
    for client in made:
        client.close()


def until(
    check: Callable[[], bool], step: Callable[[], object], what: Callable[[], object], timeout_s: float = 30
) -> None:
    """Run ``step`` until ``check`` holds (bounded: the projections catch up meanwhile); ``what()`` says why not."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what()
        step()
        time.sleep(0.05)


def caught_up(client: SyncClient, collection: str, doc_id: str, version: int) -> None:
    """Wait until the client's replica holds ``version`` of the document."""
    until(
        lambda: client.store.document(collection, doc_id).version >= version,
        client.sync_once,
        lambda: f"{client.status()}",
    )


def nothing_lost_or_frozen(victim: SyncClient, watcher: SyncClient, collection: str, doc_id: str, edit: Any) -> None:
    """The victim's next edit reaches the watcher through the change feed, and neither has anything stuck."""
    victim.patch(collection, doc_id, edit)

    def both() -> None:
        victim.sync_once()
        watcher.sync_once()

    expected = {**(victim.get(collection, doc_id) or {}), **edit}
    until(
        lambda: watcher.get(collection, doc_id) == expected,
        both,
        lambda: f"{watcher.status()} {victim.status()} {victim.store.outcomes()} {victim.dead_letters()}",
    )
    assert victim.store.pending() == [] and watcher.store.pending() == []
    assert victim.get(collection, doc_id) == expected


def shared(victim: SyncClient, watcher: SyncClient, collection: str, doc_id: str, data: dict[str, Any]) -> None:
    """The victim creates a document; both clients see it."""
    victim.put(collection, doc_id, data)
    victim.sync_once()
    until(lambda: watcher.get(collection, doc_id) == data, watcher.sync_once, lambda: f"{watcher.status()}")


def one_line(results: list[dict[str, Any]]) -> None:
    for result in results:
        assert result["status"] == "rejected", result
        assert result["reason"] and "\n" not in result["reason"], result


def test_a_clock_far_in_the_future_cannot_pin_a_field_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("notes")
    shared(alice, bob, "notes", "n1", {"title": "draft"})
    now = time.time_ns() // 1_000_000
    alices, carols = f"{now:015d}.00000.{alice.client_id}", f"{now + 30_000:015d}.00000.carol"

    pinned, borrowed = gateway.results(
        "mallory",
        {"seq": 1, "collection": "notes", "id": "n1", "data": {"title": "pinned"}, "clock": PINNED},
        {"seq": 2, "collection": "notes", "id": "n1", "data": {"title": "as alice"}, "clock": alices},
    )
    ahead = gateway.results(
        "carol", {"seq": 1, "collection": "notes", "id": "n1", "data": {"title": "c"}, "clock": carols}
    )
    clockless = gateway.results("mallory", {"seq": 3, "collection": "notes", "id": "n1", "data": {"title": "m"}})

    assert pinned["status"] == "rejected" and pinned["code"] == "clock_skew", pinned
    assert borrowed["status"] == "rejected" and "clock" in borrowed["reason"], borrowed
    assert ahead[0]["status"] == "applied" and clockless[0]["status"] in ("applied", "merged"), (ahead, clockless)
    version = clockless[0]["version"]
    for client in (alice, bob):
        caught_up(client, "notes", "n1", version)
    assert bob.get("notes", "n1") == {"title": "c"}  # a mutation without a clock no longer always wins
    nothing_lost_or_frozen(alice, bob, "notes", "n1", {"title": "final"})
    nothing_lost_or_frozen(bob, alice, "notes", "n1", {"title": "and again"})


def test_the_reserved_sync_key_is_refused_in_a_strict_collection_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("pages")
    shared(alice, bob, "pages", "p1", {"v": 1})
    bob.start(idle_wait_s=0.2)

    results = gateway.results(
        "mallory",
        {"seq": 1, "collection": "pages", "id": "p2", "op": "put", "data": {"_sync": 1}},
        {"seq": 2, "collection": "pages", "id": "p1", "data": {"_sync": {"clocks": {"v": "junk"}}}},
        {"seq": 3, "collection": "pages", "id": "p1", "unset": ["_sync"]},
    )

    one_line(results)
    assert all("_sync" in r["reason"] for r in results), results
    alice.patch("pages", "p1", {"v": 2})
    until(lambda: bob.get("pages", "p1") == {"v": 2}, alice.sync_once, lambda: f"{bob.status()}")
    bob.stop()
    nothing_lost_or_frozen(alice, bob, "pages", "p1", {"v": 3})


def test_nul_characters_nan_and_deep_nesting_are_refused_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("memos")
    shared(alice, bob, "memos", "m1", {"t": "hello"})
    deep: Any = "bottom"
    for _ in range(40):
        deep = {"d": deep}
    poison = [{"t": "a\u0000b"}, {"k\u0000": 1}, {"t": ["x", {"y": "\u0000"}]}, {"n": float("nan")}]
    poison += [{"n": float("inf")}, {"deep": deep}]

    results = gateway.results(
        "mallory", *({"seq": i, "collection": "memos", "id": "m1", "data": data} for i, data in enumerate(poison))
    )

    one_line(results)
    assert [r["code"] for r in results] == ["invalid"] * len(poison), results
    nothing_lost_or_frozen(alice, bob, "memos", "m1", {"t": "world"})


def test_a_crdt_delta_may_only_advance_the_pushers_own_replica_a_little_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("boards")
    shared(alice, bob, "boards", "b1", {"title": "x"})
    alice.increment("boards", "b1", "likes", 1)
    alice.sync_once()

    forged, endless, huge, fair = gateway.results(
        "mallory",
        {"seq": 1, "collection": "boards", "id": "b1", "crdt": {"likes": {"n": {alice.client_id: 10**300}}}},
        {"seq": 2, "collection": "boards", "id": "b1", "crdt": {"likes": {"n": {"mallory": 10**4000}}}},
        {"seq": 3, "collection": "boards", "id": "b1", "crdt": {"likes": {"p": {"mallory": 10**12}}}},
        {"seq": 4, "collection": "boards", "id": "b1", "crdt": {"likes": {"p": {"mallory": 3}}}},
    )

    assert forged["status"] == "rejected" and alice.client_id in forged["reason"], forged
    assert endless["status"] == "rejected" and "integer" in endless["reason"], endless
    assert huge["status"] == "rejected" and "1,000,000" in huge["reason"], huge
    assert fair["status"] == "applied", fair
    alice.increment("boards", "b1", "likes", 1)
    alice.sync_once()
    until(
        lambda: (bob.get("boards", "b1") or {}).get("likes") == 5, bob.sync_once, lambda: f"{bob.get('boards', 'b1')}"
    )
    nothing_lost_or_frozen(alice, bob, "boards", "b1", {"title": "y"})


def test_a_thousand_rejected_mutations_carry_the_document_once_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("files")
    blob = "x" * 100_000
    shared(alice, bob, "files", "big", {"blob": blob})
    stale = [{"seq": i, "collection": "files", "id": "big", "base_version": 0, "data": {"n": i}} for i in range(1000)]

    response = gateway.push("mallory", *stale)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["code"] for r in results] == ["version_conflict"] * 1000
    assert sum(r["state"] is not None for r in results) == 1
    assert len(response.content) < len(blob) + 1000 * 500
    nothing_lost_or_frozen(alice, bob, "files", "big", {"n": -1})


def test_a_nested_cursor_and_long_names_are_answered_as_bad_input_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("cards")
    shared(alice, bob, "cards", "c1", {"v": 1})
    nested = base64.urlsafe_b64encode(b"[" * 2500 + b"]" * 2500).decode().rstrip("=")
    wrapped = base64.urlsafe_b64encode(json.dumps({"v": 1, "g": 1, "p": {"cards": [[[[1]]]]}}).encode()).decode()

    bad_cursors = [gateway.pull("mallory", cursor=c, collections="cards") for c in (nested, wrapped)]
    long_client = gateway.push("m" * 190, {"seq": 1, "collection": "cards", "id": "c2", "op": "put", "data": {}})
    long_ids = gateway.results(
        "mallory",
        {"seq": 1, "collection": "cards", "id": "x" * 201, "op": "put", "data": {}},
        {"seq": 10**30, "collection": "cards", "id": "c3", "op": "put", "data": {}},
    )

    assert [r.status_code for r in bad_cursors] == [400, 400], [r.text for r in bad_cursors]
    assert long_client.status_code in (400, 422) and str(MAX_CLIENT) in long_client.text, long_client.text
    one_line(long_ids)
    assert "200" in long_ids[0]["reason"] and "seq" in long_ids[1]["reason"], long_ids
    nothing_lost_or_frozen(alice, bob, "cards", "c1", {"v": 2})


def test_a_put_queued_after_a_merged_mutation_keeps_the_other_clients_field_and_nothing_was_lost_or_frozen(
    gateway: Gateway, pair: Callable[[str], tuple[SyncClient, SyncClient]]
) -> None:
    alice, bob = pair("tasks")
    shared(alice, bob, "tasks", "t1", {"title": "t"})
    bob.patch("tasks", "t1", {"owner": "bob"})
    bob.sync_once()
    alice.patch("tasks", "t1", {"done": True})
    alice.put("tasks", "t1", {"title": "t2", "done": True})

    report = alice.sync_once()

    assert report.statuses == {"merged": 2}, report
    expected = {"title": "t2", "done": True, "owner": "bob"}
    until(lambda: bob.get("tasks", "t1") == expected, bob.sync_once, lambda: f"{bob.get('tasks', 't1')}")
    assert alice.get("tasks", "t1") == expected
    nothing_lost_or_frozen(alice, bob, "tasks", "t1", {"title": "t3"})
