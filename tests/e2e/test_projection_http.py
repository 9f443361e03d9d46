"""The HTTP gateway through httpx (FastAPI's TestClient), on real PostgreSQL with a processor and runners."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support import TEST_AUTH_SECRET, bearer

from syncbackbone.infra.bootstrap import bootstrap
from syncbackbone.infra.http.app import create_app
from syncbackbone.infra.settings import load_settings


@pytest.fixture
def client(pg_dsn: str, namespace: str) -> Iterator[TestClient]:
    settings = load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, auth_secret=TEST_AUTH_SECRET)
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        app = create_app(backbone, side)
        with backbone.running_processor(), side.running(), TestClient(app, headers=bearer()) as c:
            yield c
    finally:
        side.close()
        backbone.close()


def positions(result: dict[str, object]) -> str:
    return ",".join(f"{p['partition']}:{p['offset']}" for p in result["positions"])  # type: ignore[attr-defined]


def put(client: TestClient, doc_id: str, data: dict[str, object], **extra: object) -> dict[str, object]:
    body = {"type": "PutDocument", "collection": "notes", "id": doc_id, "data": data, **extra}
    response = client.post("/commands", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_posted_command_is_readable_at_once_with_read_your_writes(client: TestClient) -> None:
    result = put(client, "a", {"title": "hi"})
    got = client.get("/collections/notes/documents/a", params={"positions": positions(result), "timeout": 10})

    assert got.status_code == 200
    assert got.json()["data"] == {"title": "hi"} and got.json()["version"] == 1


def test_documents_are_listed_with_filters_and_keyset_pagination(client: TestClient) -> None:
    results = [put(client, f"d{i}", {"kind": "odd" if i % 2 else "even", "i": i}) for i in range(5)]
    wait = {"positions": ",".join(positions(r) for r in results), "timeout": 10}
    first = client.get("/collections/notes/documents", params={"limit": 2, **wait}).json()
    second = client.get("/collections/notes/documents", params={"limit": 2, "after": first["next_after"]}).json()
    odd = client.get("/collections/notes/documents", params={"where": ["kind=odd"]}).json()

    assert [d["id"] for d in first["items"] + second["items"]] == ["d0", "d1", "d2", "d3"]
    assert [d["id"] for d in odd["items"]] == ["d1", "d3"]


def test_the_audit_names_the_command_and_actor_of_each_version(client: TestClient) -> None:
    first = put(client, "au", {"v": 1})
    second = client.post(
        "/commands",
        json={"type": "PatchDocument", "collection": "notes", "id": "au", "data": {"v": 2}, "unset": ["x"]},
    ).json()
    audit = wait_for_audit(client, "notes/au", 2)

    assert [(e["version"], e["causation_id"]) for e in audit] == [
        (1, first["command_id"]),
        (2, second["command_id"]),
    ]


def wait_for_audit(client: TestClient, aggregate_id: str, entries: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        response = client.get(f"/aggregates/{aggregate_id}/audit")
        if response.status_code == 200 and len(response.json()["entries"]) >= entries or time.monotonic() > deadline:
            return list(response.json()["entries"])
        time.sleep(0.05)


def test_a_stale_expected_version_is_a_409_with_the_result(client: TestClient) -> None:
    put(client, "c", {})
    stale = client.post(
        "/commands", json={"type": "PutDocument", "collection": "notes", "id": "c", "data": {}, "expected_version": 0}
    )

    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict" and stale.json()["version"] == 1


def test_health_reports_postgres_and_projection_lag(client: TestClient) -> None:
    health = client.get("/health")

    assert health.status_code == 200
    body = health.json()
    assert body["ok"] and body["postgres"] and body["kafka"] is None
    assert set(body["projections"]) == {"documents", "changes", "audit"}


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "kind"),
    [
        ("post", "/commands", {"type": "FrobDocument", "collection": "c", "id": "x"}, 422, "InvalidInput"),
        ("post", "/commands", {"type": "PutDocument", "collection": "a/b", "id": "x", "data": {}}, 422, "InvalidInput"),
        ("post", "/commands", {"type": "PutDocument", "collection": "c", "id": "x", "data": []}, 422, "InvalidInput"),
        ("post", "/commands", {"type": "PutDocument", "collection": "c", "id": "x", "oops": 1}, 422, "InvalidInput"),
        ("get", "/collections/notes/documents/missing", None, 404, "NotFound"),
        ("get", "/collections/notes/documents?limit=0", None, 422, "InvalidInput"),
        ("get", "/collections/notes/documents?where=novalue", None, 422, "InvalidInput"),
        ("get", "/collections/notes/documents?limit=ten", None, 422, "InvalidInput"),
        ("get", "/collections/no%20spaces/documents", None, 422, "InvalidInput"),
        ("get", "/collections/notes/documents/a?positions=zero", None, 422, "InvalidInput"),
        ("get", "/collections/notes/documents/a?positions=0:99999&timeout=0.2", None, 404, "NotFound"),
        ("get", "/aggregates/notes/none/audit", None, 404, "NotFound"),
        ("get", "/no/such/route", None, 404, "HTTPError"),
    ],
)
def test_bad_requests_get_a_json_error_and_never_a_500(
    client: TestClient, method: str, path: str, payload: object, status: int, kind: str
) -> None:
    response = client.post(path, json=payload) if method == "post" else client.get(path)

    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind and response.json()["error"]["message"]


def test_a_body_that_is_not_json_is_a_422(client: TestClient) -> None:
    response = client.post("/commands", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 422 and response.json()["error"]["type"] == "InvalidInput"


def test_the_openapi_document_lists_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/commands", "/collections/{collection}/documents", "/health"} <= set(paths)
    assert "/collections/{collection}/documents/{doc_id}" in paths and "/aggregates/{aggregate_id}/audit" in paths
