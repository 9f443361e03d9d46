"""Helpers shared by the test folders: running the CLI as a user does, and cleaning a namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence

from syncbackbone.commands.ports import EventLog
from syncbackbone.domain.records import NewEvent, StoredEvent
from syncbackbone.infra.app.auth import issue_token
from syncbackbone.infra.bootstrap import kafka_connect
from syncbackbone.infra.kafka.client import Connect
from syncbackbone.infra.postgres.database import drop_namespace
from syncbackbone.infra.settings import load_settings

__all__ = [
    "TEST_AUTH_SECRET",
    "TEST_BROKER",
    "DelegatingLog",
    "bearer",
    "cli",
    "default_connect",
    "drop_namespace",
    "shell_env",
    "user_env",
]


TEST_AUTH_SECRET = "syncbackbone-tests-hs256-secret-0123456789"
"""The gateway's token secret in tests (SYNC_AUTH_SECRET); ``bearer`` signs with it."""


def bearer(
    subject: str = "tester", tenant: str = "acme", scope: str = "read write admin", client: str | None = None
) -> dict[str, str]:
    """An Authorization header with a token of ``subject`` in ``tenant``, signed with TEST_AUTH_SECRET."""
    token = issue_token(TEST_AUTH_SECRET.encode(), subject, tenant, scope.split(), client)
    return {"Authorization": f"Bearer {token}"}


def default_connect() -> Connect:
    """The Kafka client library the settings choose, for tests that make a Kafka adapter by hand."""
    return kafka_connect(load_settings())


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``syncbackbone ARGS`` in a new process, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "syncbackbone.infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


TEST_BROKER = "tansu"
"""The broker profile (SYNC_KAFKA_BROKER) of every setting the tests build: their Kafka broker is Tansu."""


def shell_env(**more: str) -> dict[str, str]:
    """This process's environment without SYNC_* variables but the tests' broker profile, plus ``more``."""
    outside = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    return {**outside, "SYNC_KAFKA_BROKER": TEST_BROKER, **more}


def user_env(pg_dsn: str, namespace: str, **more: str) -> dict[str, str]:
    """``shell_env`` plus the test's PostgreSQL and namespace, the gateway's token secret, and a token of
    tenant ``acme`` for ``syncbackbone client`` (SYNC_TOKEN)."""
    token = bearer("cli-tester", "acme", "read write admin")["Authorization"].removeprefix("Bearer ")
    auth = {"SYNC_AUTH_SECRET": TEST_AUTH_SECRET, "SYNC_TOKEN": token}
    return shell_env(SYNC_PG_DSN=pg_dsn, SYNC_NAMESPACE=namespace, **(auth | more))


class DelegatingLog(EventLog):
    """A real log behind ``inner``: every call goes to it; tests subclass it to count or to inject a fault."""

    def __init__(self, inner: EventLog) -> None:
        self.inner = inner

    @property
    def partitions(self) -> int:
        return self.inner.partitions

    def partition_for(self, aggregate_id: str) -> int:
        return self.inner.partition_for(aggregate_id)

    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        return self.inner.append(events)

    def read_aggregate(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        return self.inner.read_aggregate(aggregate_id, from_version, to_version)

    def read_aggregates_from(self, from_versions: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
        return self.inner.read_aggregates_from(from_versions)

    def read_partition(self, partition: int, from_offset: int, limit: int = 1000) -> list[StoredEvent]:
        return self.inner.read_partition(partition, from_offset, limit)

    def end_offset(self, partition: int) -> int:
        return self.inner.end_offset(partition)

    def find_command(self, aggregate_id: str, command_id: str) -> list[StoredEvent]:
        return self.inner.find_command(aggregate_id, command_id)

    def find_commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        return self.inner.find_commands(keys)

    def checkpoint(self) -> int:
        return self.inner.checkpoint()

    def claim(self, partitions: Collection[int]) -> None:
        self.inner.claim(partitions)

    def close(self) -> None:
        self.inner.close()
