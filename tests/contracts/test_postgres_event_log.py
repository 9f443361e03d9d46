"""The event log contract on the embedded PostgreSQL log, plus what only it promises."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from event_log_contract import EventLogContract, LogFactory, event

from syncbackbone.commands.ports import EventLog
from syncbackbone.domain.errors import ConfigurationError, LogUnavailable
from syncbackbone.infra.postgres.log import PostgresEventLog


class TestPostgresEventLog(EventLogContract):
    @pytest.fixture
    def make_log(self, pg_dsn: str, namespace: str) -> Iterator[LogFactory]:
        opened: list[EventLog] = []

        def make(partitions: int) -> EventLog:
            opened.append(PostgresEventLog(pg_dsn, namespace, partitions))
            return opened[-1]

        yield make
        for log in opened:
            log.close()

    def test_gives_every_event_the_next_notification_id(self, pg_dsn: str, namespace: str) -> None:
        log = PostgresEventLog(pg_dsn, namespace)
        try:
            first = log.append_with_ids([event("docs/a", 1), event("docs/b", 1)])
            second = log.append_with_ids([event("docs/a", 2)])
        finally:
            log.close()

        assert first.notification_ids == [1, 2]
        assert second.notification_ids == [3]

    def test_refuses_a_partition_count_that_differs_from_the_namespace(self, pg_dsn: str, namespace: str) -> None:
        PostgresEventLog(pg_dsn, namespace, partitions=4).close()

        with pytest.raises(ConfigurationError, match="has 4 partitions"):
            PostgresEventLog(pg_dsn, namespace, partitions=8)

    def test_creates_its_schema_once_when_started_concurrently(self, pg_dsn: str, namespace: str) -> None:
        import threading

        errors: list[BaseException] = []

        def start() -> None:
            try:
                PostgresEventLog(pg_dsn, namespace).close()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=start) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

        assert not errors, errors
        with psycopg.connect(pg_dsn) as conn:
            row = conn.execute(f'SELECT count(*) FROM "{namespace}".partitions').fetchone()
        assert row == (4,)

    def test_an_unreachable_database_raises_log_unavailable(self, namespace: str) -> None:
        with pytest.raises(LogUnavailable):
            PostgresEventLog("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1", namespace)
