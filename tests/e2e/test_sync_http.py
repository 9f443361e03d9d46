"""The /sync routes through httpx (FastAPI's TestClient), on real PostgreSQL with a processor and runners."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard
from fastapi.testclient import TestClient
from support import TEST_AUTH_SECRET, bearer, drop_namespace

from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.bootstrap import bootstrap
from syncbackbone.infra.http.app import create_app
from syncbackbone.infra.settings import load_settings

POLICIES = {"tasks": {"policy": "merge", "fallback": "server", "fields": {"n": "sum"}}, "boards": "crdt", "*": "strict"}


@pytest.fixture
def gateway(pg_dsn: str, namespace: str) -> Iterator[tuple[TestClient, ReadSide]]:
    settings = load_settings(
        kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, policies=POLICIES, auth_secret=TEST_AUTH_SECRET
    )
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        app = create_app(backbone, side)
        with backbone.running_processor(), side.running(), TestClient(app, headers=bearer()) as c:
            yield c, side
    finally:
        side.close()
        backbone.close()
        drop_namespace(pg_dsn, namespace)


@pytest.fixture
def client(gateway: tuple[TestClient, ReadSide]) -> TestClient:
    return gateway[0]


def push(client: TestClient, who: str, *mutations: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/sync/push", json={"client": who, "mutations": list(mutations)})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def pull_all(client: TestClient, collections: str, expect: int, **params: Any) -> tuple[list[dict[str, Any]], str]:
    """Every change of ``collections``, page by page, waiting until ``expect`` arrived."""
    changes: list[dict[str, Any]] = []
    cursor = None
    deadline = time.monotonic() + 15
    while len(changes) < expect and time.monotonic() < deadline:
        query = {"collections": collections, "wait": 2, **params} | ({"cursor": cursor} if cursor else {})
        page = client.get("/sync/pull", params=query).json()
        changes.extend(page["changes"])
        cursor = page["cursor"]
    return changes, str(cursor)


def test_a_push_is_applied_and_a_retried_push_is_answered_without_applying_twice(client: TestClient) -> None:
    mutation = {"seq": 1, "collection": "notes", "id": "a", "op": "put", "base_version": 0, "data": {"t": 1}}
    first = push(client, "c1", mutation)
    again = push(client, "c1", mutation)

    assert first[0]["status"] == again[0]["status"] == "applied"
    assert first[0]["command_id"] == "c1:1" and first[0]["version"] == again[0]["version"] == 1
    assert first[0]["state"] is None  # applied: the client folds its own mutation in


def test_a_stale_mutation_is_merged_returns_the_merged_state_and_shows_in_the_audit(client: TestClient) -> None:
    push(
        client,
        "c1",
        {"seq": 1, "collection": "tasks", "id": "t", "op": "put", "base_version": 0, "data": {"a": 1, "n": 5}},
    )
    push(client, "c2", {"seq": 1, "collection": "tasks", "id": "t", "base_version": 1, "data": {"a": 2, "n": 7}})
    merged = push(
        client, "c1", {"seq": 2, "collection": "tasks", "id": "t", "base_version": 1, "data": {"a": 3, "n": 6}}
    )

    assert merged[0]["status"] == "merged" and merged[0]["version"] == 3
    assert merged[0]["state"]["data"] == {"a": 2, "n": 8}
    deadline = time.monotonic() + 10
    while (audit := client.get("/aggregates/tasks/t/audit")).status_code != 200 or len(audit.json()["entries"]) < 3:
        assert time.monotonic() < deadline, audit.text
        time.sleep(0.05)
    assert [e["type"] for e in audit.json()["entries"]][-1] == "ConflictResolved"


def test_under_the_strict_policy_a_stale_mutation_is_rejected_with_the_current_state(client: TestClient) -> None:
    push(client, "c1", {"seq": 1, "collection": "notes", "id": "s", "op": "put", "base_version": 0, "data": {"v": 1}})
    stale = push(client, "c2", {"seq": 1, "collection": "notes", "id": "s", "op": "put", "base_version": 0, "data": {}})

    assert stale[0]["status"] == "rejected" and stale[0]["code"] == "version_conflict"
    assert stale[0]["state"] == {"version": 1, "data": {"v": 1}, "deleted": False} and not stale[0]["retryable"]


def test_bad_mutations_get_their_own_error_and_the_rest_of_the_batch_still_applies(client: TestClient) -> None:
    results = push(
        client,
        "c1",
        {"seq": 1, "collection": "notes", "id": "ok", "op": "put", "data": {}},
        {"seq": 2, "collection": "bad/name", "id": "x"},
        {"seq": 3, "collection": "notes", "id": "x", "op": "frobnicate"},
        "not an object",
        {"seq": 5, "collection": "notes", "id": "missing", "op": "patch", "data": {"a": 1}},
        {"seq": 6, "collection": "boards", "id": "b", "crdt": {"likes": {"p": {"c1": 1}}}},
    )

    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "rejected", "rejected", "rejected"]
    assert [r["code"] for r in results[1:]] == ["invalid", "invalid", "invalid", "rejected", "rejected"]
    assert "collection" in results[1]["reason"] and results[3]["seq"] is None
    assert "does not exist" in results[4]["reason"] and "not a CRDT field" in results[5]["reason"]


def test_later_mutations_of_one_document_in_a_push_are_rebased_on_the_earlier_ones(client: TestClient) -> None:
    base = {"collection": "tasks", "id": "r", "base_version": 0}
    results = push(
        client, "c1", {"seq": 1, "op": "put", "data": {"a": 1}, **base}, {"seq": 2, "data": {"a": 2}, **base}
    )

    assert [(r["status"], r["version"], r["state"]) for r in results] == [("applied", 1, None), ("applied", 2, None)]


def test_pull_pages_through_the_subscribed_collections_only(client: TestClient) -> None:
    for i in range(5):
        push(client, "c1", {"seq": i, "collection": "notes", "id": f"n{i}", "op": "put", "data": {"i": i}})
    push(client, "c1", {"seq": 9, "collection": "tasks", "id": "other", "op": "put", "data": {}})
    changes, cursor = pull_all(client, "notes", 5, limit=2)
    after = client.get("/sync/pull", params={"collections": "notes", "cursor": cursor}).json()

    assert sorted((c["id"], c["version"], c["op"]) for c in changes) == [(f"n{i}", 1, "created") for i in range(5)]
    assert after["changes"] == [] and after["more"] is False


@pytest.mark.parametrize(("coding", "decode"), [("gzip", gzip.decompress), ("zstd", zstandard.decompress)])
def test_a_pull_is_compressed_when_the_client_accepts_it(client: TestClient, coding: str, decode: Any) -> None:
    for i in range(20):
        push(client, "c1", {"seq": i, "collection": "notes", "id": f"z{i}", "op": "put", "data": {"text": "x" * 50}})
    pull_all(client, "notes", 20)
    with client.stream("GET", "/sync/pull", params={"collections": "notes"}, headers={"accept-encoding": coding}) as r:
        raw = b"".join(r.iter_raw())

    assert r.headers["content-encoding"] == coding and r.headers["vary"] == "Accept-Encoding"
    assert len(decode(raw)) > 2 * len(raw)


def test_a_long_poll_returns_as_soon_as_a_change_arrives(client: TestClient) -> None:
    cursor = client.get("/sync/pull", params={"collections": "notes"}).json()["cursor"]
    later = threading.Timer(0.5, push, (client, "c1", {"seq": 1, "collection": "notes", "id": "lp", "op": "put"}))
    later.start()
    started = time.monotonic()
    page = client.get("/sync/pull", params={"collections": "notes", "cursor": cursor, "wait": 20}).json()

    assert [c["id"] for c in page["changes"]] == ["lp"] and time.monotonic() - started < 10


def test_server_sent_events_carry_changes_after_the_cursor(client: TestClient) -> None:
    push(client, "c1", {"seq": 1, "collection": "notes", "id": "sse", "op": "put", "data": {"x": 1}})
    with client.stream("GET", "/sync/stream", params={"collections": "notes", "timeout": 5}) as stream:
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                break

    assert lines[0] == "event: changes" and '"id":"sse"' in lines[-1].replace(" ", "")


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("get", "/sync/pull?collections=notes&cursor=%%%", None, 422),
        ("get", "/sync/pull?collections=notes&cursor=eyJ2IjoyfQ", None, 400),
        ("get", "/sync/pull", None, 422),
        ("get", "/sync/pull?collections=no%20way", None, 422),
        ("get", "/sync/pull?collections=notes&limit=0", None, 422),
        ("get", "/sync/stream?collections=notes&cursor=nope", None, 400),
        ("post", "/sync/push", {"mutations": []}, 422),
        ("post", "/sync/push", {"client": "c", "mutations": "all"}, 422),
        ("post", "/sync/push", {"client": "a b", "mutations": []}, 422),
    ],
)
def test_a_malformed_cursor_or_body_is_a_4xx_with_a_json_error(
    client: TestClient, method: str, path: str, payload: object, status: int
) -> None:
    response = client.post(path, json=payload) if method == "post" else client.get(path)

    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_the_policies_are_published_for_clients(client: TestClient) -> None:
    policies = client.get("/sync/policies").json()

    assert policies["tasks"] == {"policy": "merge", "fields": {"n": "sum"}, "fallback": "server"}
    assert policies["boards"]["policy"] == "crdt" and policies["*"]["policy"] == "strict"


def test_a_cursor_from_before_a_rebuild_of_the_change_feed_starts_over_and_says_so(
    gateway: tuple[TestClient, ReadSide],
) -> None:
    client, side = gateway
    for i in range(4):
        push(client, "c1", {"seq": i, "collection": "notes", "id": f"n{i}", "op": "put", "data": {"i": i}})
    before, cursor = pull_all(client, "notes", 4)
    assert client.get("/sync/pull", params={"collections": "notes", "cursor": cursor}).json()["reset"] is False

    side.rebuild("changes")  # numbers the feed afresh: the old positions mean nothing now
    again = client.get("/sync/pull", params={"collections": "notes", "cursor": cursor}).json()
    after = client.get("/sync/pull", params={"collections": "notes", "cursor": again["cursor"]}).json()

    assert again["reset"] is True
    assert sorted((c["id"], c["version"]) for c in again["changes"]) == sorted((c["id"], c["version"]) for c in before)
    assert (after["reset"], after["changes"]) == (False, [])
