"""Fault tests run on both logs: each test gets the environment and a backbone of one of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import user_env

from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings


@pytest.fixture(params=["kafka", "embedded"])
def env(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> dict[str, str]:
    """SYNC_* settings of a processor process on the Kafka log (Tansu) or the embedded log."""
    kafka: dict[str, str] = {}
    if request.param == "kafka":  # processes save their index often, so restarts start from checkpoints
        bootstrap_servers = request.getfixturevalue("tansu").bootstrap
        kafka = {"SYNC_KAFKA_BOOTSTRAP": bootstrap_servers, "SYNC_INDEX_CHECKPOINT_EVERY": "200"}
    return user_env(pg_dsn, namespace, SYNC_PARTITIONS="4", **kafka)


@pytest.fixture
def backbone(env: dict[str, str]) -> Iterator[Backbone]:
    """A backbone in this process on the same log and namespace as the processes under test."""
    settings = load_settings(
        kafka_bootstrap=env.get("SYNC_KAFKA_BOOTSTRAP"), pg_dsn=env["SYNC_PG_DSN"], namespace=env["SYNC_NAMESPACE"]
    )
    bb = bootstrap(settings)
    yield bb
    bb.close()
