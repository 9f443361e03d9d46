"""Nobody gets in without a token, a token's scopes bound what it may do, and tenants never meet.

The gateway is the real FastAPI app over real PostgreSQL, driven through httpx's TestClient.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from support import TEST_AUTH_SECRET, bearer

from syncbackbone.infra.app.auth import TokenVerifier, load_jwks
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.http.app import create_app
from syncbackbone.infra.settings import load_settings

READER = bearer("rita", "acme", "read")
WRITER = bearer("will", "acme", "read write")
ADMIN = bearer("ada", "acme", "admin")
OTHER_TENANT = bearer("olga", "globex", "read write admin")


@pytest.fixture
def backbone(pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    settings = load_settings(
        kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, auth_secret=TEST_AUTH_SECRET, rate_limit="1000/60s"
    )
    bb = bootstrap(settings)
    yield bb
    bb.close()


@pytest.fixture
def gateway(backbone: Backbone) -> Iterator[TestClient]:
    side = backbone.read_side()
    try:
        with backbone.running_processor(), side.running(), TestClient(create_app(backbone, side)) as c:
            yield c
    finally:
        side.close()


def put(client: TestClient, headers: dict[str, str], doc_id: str, data: dict[str, Any], **extra: Any) -> Any:
    body = {"type": "PutDocument", "collection": "notes", "id": doc_id, "data": data, **extra}
    return client.post("/commands", json=body, headers=headers)


def until_ok(request: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """``request()`` again until it answers 200 (the audit projection may lag the documents one)."""
    deadline = time.monotonic() + timeout_s
    while (response := request()).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    return response


def read_your_write(client: TestClient, headers: dict[str, str], result: dict[str, Any]) -> Any:
    where = ",".join(f"{p['partition']}:{p['offset']}" for p in result["positions"])
    doc_id = result["aggregate_id"].split("/")[1]
    return client.get(
        f"/collections/notes/documents/{doc_id}", params={"positions": where, "timeout": 10}, headers=headers
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-jwt"},
        {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "x", "tenant": "acme", "aud": "syncbackbone", "exp": 1}, TEST_AUTH_SECRET)
        },
        {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "x", "tenant": "acme", "aud": "syncbackbone", "exp": 2**40}, "wrong-secret")
        },
        {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "x", "tenant": "acme", "aud": "elsewhere", "exp": 2**40}, TEST_AUTH_SECRET)
        },
        {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "x", "tenant": "acme", "aud": "syncbackbone"}, TEST_AUTH_SECRET)
        },
    ],
    ids=["missing", "not-bearer", "malformed", "expired", "badly-signed", "wrong-audience", "no-exp"],
)
def test_a_request_without_a_valid_token_is_a_401_with_a_bearer_challenge(
    gateway: TestClient, headers: dict[str, str]
) -> None:
    for method, path in [("get", "/collections/notes/documents"), ("post", "/sync/push"), ("get", "/sync/pull")]:
        response = gateway.request(method, path, headers=headers, json={} if method == "post" else None)

        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"]["type"] == "Unauthenticated"
    assert gateway.get("/health").status_code == 200


def test_three_principals_of_two_tenants_get_401_403_or_200_on_every_route(gateway: TestClient) -> None:
    written = put(gateway, WRITER, "n1", {"title": "mine"})
    assert written.status_code == 200, written.text
    assert read_your_write(gateway, READER, written.json()).status_code == 200
    routes = [
        ("post", "/commands", {"type": "PutDocument", "collection": "notes", "id": "n2", "data": {}}),
        ("get", "/collections/notes/documents", None),
        ("get", "/collections/notes/documents/n1", None),
        ("get", "/aggregates/notes/n1/audit", None),
        ("post", "/sync/push", {"client": "dev1", "mutations": [{"seq": 1, "collection": "notes", "id": "n3"}]}),
        ("get", "/sync/pull?collections=notes", None),
        ("get", "/sync/policies", None),
    ]
    expected = {
        "reader": [403, 200, 200, 403, 403, 200, 200],
        "writer": [200, 200, 200, 403, 200, 200, 200],
        "admin": [200, 200, 200, 200, 200, 200, 200],
        "nobody": [401] * 7,
    }
    who = {"reader": READER, "writer": WRITER, "admin": ADMIN, "nobody": {}}
    for name, statuses in expected.items():
        got = [gateway.request(m, p, json=b, headers=who[name]).status_code for m, p, b in routes]
        assert got == statuses, name


def test_two_tenants_with_the_same_collection_and_id_never_see_each_other(gateway: TestClient) -> None:
    mine = put(gateway, WRITER, "shared", {"owner": "acme"}).json()
    theirs = put(gateway, OTHER_TENANT, "shared", {"owner": "globex"}).json()

    assert mine["version"] == 1 and theirs["version"] == 1 and mine["aggregate_id"] == "notes/shared"
    assert read_your_write(gateway, READER, mine).json()["data"] == {"owner": "acme"}
    assert read_your_write(gateway, OTHER_TENANT, theirs).json()["data"] == {"owner": "globex"}
    listed = gateway.get("/collections/notes/documents", headers=OTHER_TENANT).json()["items"]
    assert [(d["collection"], d["id"], d["data"]) for d in listed] == [("notes", "shared", {"owner": "globex"})]
    audit = until_ok(lambda: gateway.get("/aggregates/notes/shared/audit", headers=OTHER_TENANT)).json()["entries"]
    assert [e["actor"] for e in audit] == ["olga"] and audit[0]["tenant"] == "globex"


def test_one_principals_command_id_never_answers_anothers(gateway: TestClient) -> None:
    first = put(gateway, WRITER, "k1", {"by": "will"}, command_id="retry-key-1")
    second = put(gateway, OTHER_TENANT, "k1", {"by": "olga"}, command_id="retry-key-1")
    again = put(gateway, WRITER, "k1", {"by": "will, retried"}, command_id="retry-key-1")

    assert first.json()["status"] == second.json()["status"] == "accepted"
    assert read_your_write(gateway, OTHER_TENANT, second.json()).json()["data"] == {"by": "olga"}
    assert again.json()["version"] == 1  # the retry is answered from the first, not applied again
    assert read_your_write(gateway, WRITER, first.json()).json()["data"] == {"by": "will"}


def test_the_actor_comes_from_the_token_and_the_body_cannot_name_one(gateway: TestClient) -> None:
    spoofed = gateway.post(
        "/commands",
        json={"type": "PutDocument", "collection": "notes", "id": "a1", "data": {}, "actor": "mallory"},
        headers=WRITER,
    )
    done = put(gateway, WRITER, "a1", {}).json()
    read_your_write(gateway, WRITER, done)

    assert spoofed.status_code == 422
    audit = until_ok(lambda: gateway.get("/aggregates/notes/a1/audit", headers=ADMIN)).json()["entries"]
    assert [e["actor"] for e in audit] == ["will"]


def test_a_body_over_the_limit_is_a_413_before_anything_is_stored(gateway: TestClient, backbone: Backbone) -> None:
    huge = {"type": "PutDocument", "collection": "notes", "id": "big", "data": {"x": "y" * (2 << 20)}}
    response = gateway.post("/commands", json=huge, headers=WRITER)

    assert response.status_code == 413 and response.json()["error"]["type"] == "TooLarge"
    assert backbone.log.read_aggregate("acme~notes/big", 1) == []


def test_a_principal_over_its_rate_is_a_429_while_health_and_others_go_on(pg_dsn: str, namespace: str) -> None:
    settings = load_settings(pg_dsn=pg_dsn, namespace=namespace, auth_secret=TEST_AUTH_SECRET, rate_limit="5/60s")
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        with TestClient(create_app(backbone, side)) as gateway:
            statuses = [gateway.get("/sync/policies", headers=READER).status_code for _ in range(8)]
            limited = gateway.get("/sync/policies", headers=READER)
            started = time.monotonic()
            health = gateway.get("/health")
            health_s = time.monotonic() - started
            other = gateway.get("/sync/policies", headers=OTHER_TENANT)
    finally:
        side.close()
        backbone.close()

    assert statuses == [200] * 5 + [429] * 3
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert health.status_code == 200 and health_s < 1.0
    assert other.status_code == 200


def test_tokens_signed_by_a_jwks_key_are_accepted_by_kid_and_others_refused(
    gateway: TestClient, backbone: Backbone, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public | {"kid": "k-2026", "alg": "RS256"}]}))
    verifier = TokenVerifier("syncbackbone", jwks=load_jwks((tmp_path / "jwks.json").read_text()))
    claims = {"sub": "svc", "tenant": "acme", "scope": "read", "aud": "syncbackbone", "exp": int(time.time()) + 60}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k-2026"})
    unknown_kid = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k-1999"})
    no_kid = jwt.encode(claims, key, algorithm="RS256")
    hs_forgery = jwt.encode(claims, base64.b64encode(b"k").decode(), algorithm="HS256", headers={"kid": "k-2026"})
    side = backbone.read_side()
    try:
        with TestClient(create_app(backbone, side, verifier)) as jwks_gateway:
            statuses = [
                jwks_gateway.get("/sync/policies", headers={"Authorization": f"Bearer {t}"}).status_code
                for t in (good, unknown_kid, no_kid, hs_forgery)
            ]
    finally:
        side.close()

    assert statuses == [200, 401, 401, 401]
