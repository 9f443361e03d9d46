"""Idle processes on Kafka append nothing, under either broker profile (SYNC_KAFKA_BROKER=kafka|tansu).

``serve`` (the processor) and ``projections run`` run as a user runs them; one command goes
through and is projected, then both idle for a while. Every topic's high watermark must stay
where it was: each record appended moves it. Under ``kafka`` no read path ever appends; under
``tansu`` the backbone writes only in transactions, whose end the broker lists exactly, so no
catch-up marker is ever due. (Before the broker profiles, the two appended about 150 markers a
second to ``<ns>.events``.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest
from support import cli, user_env

from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.kafka.partitions import Topics
from syncbackbone.infra.runtime.processes import Tansu

pytestmark = pytest.mark.slow
IDLE_S = 3.0
"""How long the processes are watched idling (a window to observe, not a timing that is asserted)."""


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "syncbackbone.infra.cli", *args]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def projected(pg_dsn: str, namespace: str) -> int:
    """How many documents the documents projection holds (0 before its table exists)."""
    try:
        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute(f'SELECT count(*) FROM "{namespace}__documents".documents').fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


@pytest.fixture
def client(tansu: Tansu) -> Iterator[KafkaPythonClient]:
    made = KafkaPythonClient(tansu.bootstrap)
    yield made
    made.close()


@pytest.mark.parametrize("broker", ["kafka", "tansu"])
def test_an_idle_processor_and_projection_worker_append_nothing(
    tansu: Tansu, client: KafkaPythonClient, pg_dsn: str, namespace: str, broker: str
) -> None:
    env = user_env(pg_dsn, namespace, SYNC_KAFKA_BOOTSTRAP=tansu.bootstrap, SYNC_KAFKA_BROKER=broker)
    topics = Topics.of(namespace)
    serve = start(env, "serve")
    try:
        done = cli("submit", "CreateDocument", "--collection", "notes", "--id", "idle", "--data", '{"n": 1}', env=env)
        assert done.returncode == 0 and "accepted" in done.stdout, done.stderr
        before = {t: client.high_watermarks(t, range(4)) for t in (topics.events, topics.results, topics.dlq)}
        worker = start(env, "projections", "run")
        try:
            deadline = time.monotonic() + 120
            while not projected(pg_dsn, namespace):
                assert time.monotonic() < deadline, "the document was not projected in 120 s"
                time.sleep(0.2)
            time.sleep(IDLE_S)
            assert {t: client.high_watermarks(t, range(4)) for t in before} == before
        finally:
            stop(worker)
    finally:
        stop(serve)
