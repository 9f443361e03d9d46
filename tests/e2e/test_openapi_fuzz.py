"""The whole HTTP API fuzzed from its own OpenAPI document (schemathesis): no 5xx, and the document tells the truth.

Every operation is called with generated requests that the document allows, with a valid
token, and every schemathesis check runs on the answers: no server error, every status
and header documented, every body of the documented shape, requests the schema allows
accepted, a missing token refused. Long waits are capped so that a run stays short.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support import TEST_AUTH_SECRET, bearer, drop_namespace

from syncbackbone.infra.bootstrap import bootstrap
from syncbackbone.infra.http.app import create_app
from syncbackbone.infra.settings import load_settings

WAITS = ("wait", "timeout")
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({"generation": {"allow-x00": False}})
"""NUL characters are refused anywhere in a document (a rule JSON schema cannot state for nested values;
tests/e2e/sync/test_damage.py shows the refusal), so the fuzzer does not send them as valid data."""


@pytest.fixture(scope="module")
def gateway_app(pg_dsn: str) -> Iterator[FastAPI]:
    namespace = f"fz{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        kafka_bootstrap=None,
        pg_dsn=pg_dsn,
        namespace=namespace,
        auth_secret=TEST_AUTH_SECRET,
        rate_limit="100000/60s",
        rate_limit_anonymous="100000/60s",
    )
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        with backbone.running_processor(), side.running():
            yield create_app(backbone, side)
    finally:
        side.close()
        backbone.close()
        drop_namespace(pg_dsn, namespace)


@pytest.fixture
def api_schema(gateway_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", gateway_app, headers=bearer(), config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_request_the_openapi_document_allows_gets_a_documented_answer(case: schemathesis.Case) -> None:
    if case.path == "/sync/stream" and isinstance(case.query, dict):  # a stream lasts 300 s unless told otherwise
        case.query.setdefault("timeout", 0.05)
    for name in WAITS:  # a long-poll or stream may last a minute: the fuzzer does not wait for it
        value = (case.query or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0.05:
            case.query[name] = 0.05
    # a cursor is opaque: one the server never issued is rightly a 400, though no schema can tell it apart
    exclude = [positive_data_acceptance] if (case.query or {}).get("cursor") else []
    case.call_and_validate(headers=bearer(), excluded_checks=exclude)
