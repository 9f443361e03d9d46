"""eventsourcing's own recorder test cases, run on our recorders over the embedded log.

These are unittest cases, so the PostgreSQL DSN comes from SYNC_PG_DSN or the local
server rather than from pytest fixtures; each test gets a fresh namespace (schema),
dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, ProcessRecorder, TrackingRecorder
from eventsourcing.tests import persistence as cases
from eventsourcing.utils import Environment

from syncbackbone.infra.es.factory import EmbeddedLogFactory
from syncbackbone.infra.es.recorders import (
    EventLogAggregateRecorder,
    PostgresLogApplicationRecorder,
    PostgresLogProcessRecorder,
    PostgresLogTrackingRecorder,
)
from syncbackbone.infra.postgres.log import PostgresEventLog
from syncbackbone.infra.runtime.processes import LOCAL_PG_DSN

PG_DSN = os.environ.get("SYNC_PG_DSN") or LOCAL_PG_DSN


def drop_schemas(*namespaces: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for ns in namespaces:
            conn.execute(f'DROP SCHEMA IF EXISTS "{ns}" CASCADE'.encode())


class FreshLog:
    """A fresh namespace per test, closed and dropped after it."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.namespace = f"es{uuid.uuid4().hex[:10]}"
        self.log = PostgresEventLog(PG_DSN, self.namespace)

    def tearDown(self) -> None:
        self.log.close()
        drop_schemas(self.namespace)
        super().tearDown()  # type: ignore[misc]


class TestEventLogAggregateRecorder(FreshLog, cases.AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return EventLogAggregateRecorder(self.log)


class TestPostgresLogApplicationRecorder(FreshLog, cases.ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        return PostgresLogApplicationRecorder(self.log)

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestPostgresLogTrackingRecorder(FreshLog, cases.TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return PostgresLogTrackingRecorder(self.log)


class TestPostgresLogProcessRecorder(FreshLog, cases.ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return PostgresLogProcessRecorder(self.log)


class TestNonInterleavingNotificationIds(FreshLog, cases.NonInterleavingNotificationIDsBaseCase):
    insert_num = 200

    def create_recorder(self) -> ApplicationRecorder:
        return PostgresLogApplicationRecorder(self.log)


class TestEmbeddedLogFactory(cases.InfrastructureFactoryTestCase[EmbeddedLogFactory]):
    def setUp(self) -> None:
        self.base = f"es{uuid.uuid4().hex[:8]}"
        self.env = Environment(
            "TestCase",
            {"PERSISTENCE_MODULE": "syncbackbone.infra.es.factory", "SYNC_PG_DSN": PG_DSN, "SYNC_NAMESPACE": self.base},
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        drop_schemas(f"{self.base}_testcase", f"{self.base}_testcase_events", f"{self.base}_testcase_snapshots")

    def expected_factory_class(self) -> type[EmbeddedLogFactory]:
        return EmbeddedLogFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresLogApplicationRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return PostgresLogApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresLogTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return type("CustomTrackingRecorder", (PostgresLogTrackingRecorder,), {})

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PostgresLogProcessRecorder


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self, by: int) -> None:
        self.count += by


def test_an_application_saves_and_reloads_aggregates_with_snapshots_on_the_embedded_log() -> None:
    base = f"es{uuid.uuid4().hex[:8]}"
    env: dict[str, Any] = {
        "PERSISTENCE_MODULE": "syncbackbone.infra.es.factory",
        "SYNC_PG_DSN": PG_DSN,
        "SYNC_NAMESPACE": base,
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    app = Application[Any](env=env)
    try:
        counter = Counter()
        for n in range(1, 4):
            counter.increment(n)
        app.save(counter)
        app.take_snapshot(counter.id, version=3)
        counter = app.repository.get(counter.id)
        counter.increment(10)
        app.save(counter)

        assert app.repository.get(counter.id).count == 16
        assert app.repository.get(counter.id, version=2).count == 1
        assert [n.originator_version for n in app.recorder.select_notifications(None, 10)] == [1, 2, 3, 4, 5]
    finally:
        app.close()
        drop_schemas(f"{base}_application", f"{base}_application_snapshots")
