"""Convergence, property-based: offline clients edit the same documents, reconnect in any order, converge.

For each policy, hypothesis draws a plan: clients make random edits while offline and
sync now and then, in random order; then every client syncs until quiet. Afterwards
every replica equals the server's read model, every acknowledged mutation is in the
log exactly once, and none is applied twice; per policy, the winner is the one the
policy promises (lww: latest clock per field; crdt: every acknowledged increment counts).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from syncbackbone.client import SyncClient
from syncbackbone.domain.errors import CommandRejected
from syncbackbone.domain.hlc import Timestamp

from .harness import (
    SyncServer,
    assert_converged,
    assert_each_acknowledged_once,
    new_client,
    sync_server,
    sync_until_quiet,
)

CLIENTS, DOCS = 3, 2
POLICIES = {
    "strict": "strict",
    "lww": "lww",
    "merge": {"policy": "merge", "fallback": "client", "fields": {"n": "sum", "tags": "union"}},
    "crdt": {"policy": "crdt", "fields": {"likes": "counter", "tags": "orset"}},
}
VALUES = st.integers(0, 9)
FIELDS = st.sampled_from(["a", "b", "n"])
EDITS = {
    "strict": st.one_of(
        st.tuples(st.just("put"), st.dictionaries(FIELDS, VALUES, max_size=2)),
        st.tuples(st.just("patch"), st.dictionaries(FIELDS, VALUES, min_size=1, max_size=2)),
        st.tuples(st.just("delete"), st.just({})),
    ),
    "lww": st.one_of(
        st.tuples(st.just("patch"), st.dictionaries(FIELDS, VALUES, min_size=1, max_size=2)),
        st.tuples(st.just("unset"), FIELDS),
    ),
    "merge": st.one_of(
        st.tuples(st.just("patch"), st.dictionaries(FIELDS, VALUES, min_size=1, max_size=2)),
        st.tuples(st.just("put"), st.dictionaries(FIELDS, VALUES, max_size=3)),
        st.tuples(st.just("unset"), FIELDS),
    ),
    "crdt": st.one_of(
        st.tuples(st.just("increment"), st.integers(-3, 5)),
        st.tuples(st.just("add"), st.sampled_from("xyz")),
        st.tuples(st.just("remove"), st.sampled_from("xyz")),
        st.tuples(st.just("patch"), st.dictionaries(st.just("title"), VALUES, min_size=1)),
    ),
}


def plans(policy: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Steps: ("edit", client, doc, edit) made offline, or ("sync", client) when that client reconnects."""
    client, doc = st.integers(0, CLIENTS - 1), st.integers(0, DOCS - 1)
    edit = st.tuples(st.just("edit"), client, doc, EDITS[policy])
    return st.lists(st.one_of(edit, edit, edit, st.tuples(st.just("sync"), client)), min_size=1, max_size=14)


@pytest.fixture(
    scope="module",
    params=[(p, log) for log in ("embedded", "kafka") for p in POLICIES],
    ids=[f"{p}-{log}" for log in ("embedded", "kafka") for p in POLICIES],
)
def server(request: pytest.FixtureRequest, pg_dsn: str) -> Iterator[tuple[str, SyncServer]]:
    """A server per policy, on the embedded PostgreSQL log and on Kafka (Tansu)."""
    policy, log = request.param
    kafka = request.getfixturevalue("tansu").bootstrap if log == "kafka" else None
    with sync_server(pg_dsn, POLICIES[policy], kafka, result_timeout_s=20) as s:
        yield policy, s


def edit(client: SyncClient, collection: str, doc_id: str, change: tuple[str, Any]) -> dict[str, Any] | None:
    """Make one edit; the mutation it queued (None when it cannot apply to what the client sees)."""
    kind, arg = change
    actions = {
        "put": lambda: client.put(collection, doc_id, arg),
        "patch": lambda: client.patch(collection, doc_id, arg),
        "unset": lambda: client.patch(collection, doc_id, unset=[arg]),
        "delete": lambda: client.delete(collection, doc_id),
        "increment": lambda: client.increment(collection, doc_id, "likes", arg),
        "add": lambda: client.add(collection, doc_id, "tags", arg),
        "remove": lambda: client.remove(collection, doc_id, "tags", arg),
    }
    try:
        seq = actions[kind]()
    except CommandRejected:
        return None
    return next(m for m in client.store.pending() if m["seq"] == seq) | {"edit": change}


def run_plan(server: SyncServer, folder: Path, plan: list[tuple[Any, ...]]) -> tuple[str, list[SyncClient], list[Any]]:
    collection = f"c{uuid.uuid4().hex[:8]}"
    clients = [new_client(folder, f"n{i}-{collection}", server.http, collection) for i in range(CLIENTS)]
    for d in range(DOCS):
        clients[0].put(collection, f"d{d}", {"a": 0, "n": 0})
    sync_until_quiet(server, clients)
    made: list[Any] = []
    for step in plan:
        if step[0] == "sync":
            clients[step[1]].sync_once()
            continue
        mutation = edit(clients[step[1]], collection, f"d{step[2]}", step[3])
        if mutation is not None:
            made.append((clients[step[1]].client_id, mutation))
    sync_until_quiet(server, clients)
    return collection, clients, made


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_offline_clients_converge_and_no_acknowledged_mutation_is_lost_or_doubled(
    server: tuple[str, SyncServer], data: st.DataObject
) -> None:
    policy, sync = server
    plan = data.draw(plans(policy), label="plan")
    with tempfile.TemporaryDirectory() as folder:
        collection, clients, made = run_plan(sync, Path(folder), plan)
        try:
            assert_converged(sync, collection, clients)
            counts = {c.client_id: 0 for c in clients}
            for who, _ in made:
                counts[who] += 1
            counts[clients[0].client_id] += DOCS
            assert_each_acknowledged_once(sync, collection, clients, counts)
            check_policy_promise(policy, sync, collection, clients, made)
            for client in clients:
                for outcome in client.store.outcomes().values():
                    event(f"{outcome['status']} {outcome['code'] or ''}".strip())
        finally:
            for client in clients:
                client.close()


def acknowledged(clients: list[SyncClient], made: list[Any]) -> list[dict[str, Any]]:
    outcomes = {c.client_id: c.store.outcomes() for c in clients}
    return [m for who, m in made if outcomes[who][m["seq"]]["status"] in ("applied", "merged")]


def check_policy_promise(
    policy: str, server: SyncServer, collection: str, clients: list[SyncClient], made: list[Any]
) -> None:
    docs = server.read_model(collection)
    acked = acknowledged(clients, made)
    for d in range(DOCS):
        mine = [m for m in acked if m["id"] == f"d{d}"]
        data = docs[f"d{d}"][1]
        if policy == "crdt":
            assert data.get("likes", 0) == sum(m["edit"][1] for m in mine if m["edit"][0] == "increment")
        if policy == "lww":
            for name in ("a", "b", "n"):
                writes = [m for m in mine if name in m.get("data", {}) or name in m.get("unset", [])]
                if writes:
                    last = max(writes, key=lambda m: Timestamp.parse(m["clock"]))
                    assert data.get(name) == last.get("data", {}).get(name), f"{name} is not the latest write"
