"""PostgreSQL plumbing of the embedded default: connections, error translation and DDL.

Every table lives in a schema named after the namespace (``"sync"``, a test's
``"t1a2b..."``). ``ensure_schema`` creates what is missing under a transaction-level
advisory lock, so processes starting together do not race on ``CREATE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from ...domain.errors import ConcurrencyConflict, ConfigurationError, LogUnavailable
from ...domain.names import checked_namespace

Conn = psycopg.Connection[Any]

LOG_DDL = """
CREATE TABLE IF NOT EXISTS {s}.partitions (
    partition integer PRIMARY KEY,
    next_offset bigint NOT NULL DEFAULT 0,
    epoch bigint NOT NULL DEFAULT 0,
    heartbeat_at timestamptz
);
CREATE TABLE IF NOT EXISTS {s}.log_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_notification_id bigint NOT NULL DEFAULT 1
);
INSERT INTO {s}.log_head (id) VALUES (true) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS {s}.events (
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    notification_id bigint NOT NULL UNIQUE,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    type text NOT NULL,
    payload bytea NOT NULL,
    event_id text NOT NULL,
    aggregate_type text NOT NULL,
    schema_version integer NOT NULL,
    occurred_at_ms bigint NOT NULL,
    causation_id text,
    correlation_id text,
    actor text,
    client_id text,
    tenant text,
    compression text,
    encryption_key_id text,
    trace_context text,
    recorded_at_ms bigint NOT NULL,
    PRIMARY KEY (partition, "offset"),
    UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS events_causation_id ON {s}.events (causation_id);
"""

BUS_DDL = """
CREATE TABLE IF NOT EXISTS {s}.command_partitions (
    partition integer PRIMARY KEY,
    next_offset bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.commands (
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    key text,
    value bytea NOT NULL,
    header_keys text[] NOT NULL DEFAULT '{{}}',
    header_values bytea[] NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition, "offset")
);
CREATE TABLE IF NOT EXISTS {s}.results (
    seq bigserial PRIMARY KEY,
    command_id text NOT NULL,
    partition integer NOT NULL,
    status text NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    reason text,
    code text,
    positions jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS results_command_id ON {s}.results (command_id, seq);
CREATE TABLE IF NOT EXISTS {s}.dead_letters (
    seq bigserial PRIMARY KEY,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    key text,
    value bytea NOT NULL,
    header_keys text[] NOT NULL DEFAULT '{{}}',
    header_values bytea[] NOT NULL DEFAULT '{{}}',
    error_type text NOT NULL,
    error text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.consumer_offsets (
    group_name text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (group_name, partition)
);
"""

TRACKING_DDL = """
CREATE TABLE IF NOT EXISTS {s}.tracking (
    application_name text PRIMARY KEY,
    notification_id bigint NOT NULL
);
"""


@contextmanager
def translated_errors(what: str) -> Iterator[None]:
    """Re-raise driver errors as ours: unique violations as ConcurrencyConflict, the rest as LogUnavailable."""
    try:
        yield
    except psycopg.errors.UniqueViolation as e:
        raise ConcurrencyConflict(f"{what}: {e.diag.message_detail or e}") from e
    except psycopg.OperationalError as e:
        raise LogUnavailable(f"{what}: PostgreSQL is unavailable: {e}") from e


def open_pool(dsn: str, max_size: int = 4) -> ConnectionPool[Conn]:
    """A thread-safe pool of autocommit connections (transactions are explicit)."""
    with translated_errors("opening the connection pool"):
        pool: ConnectionPool[Conn] = ConnectionPool(
            dsn, min_size=1, max_size=max_size, kwargs={"autocommit": True}, timeout=10.0, open=True
        )
        return pool


@contextmanager
def setup_connection(dsn: str, what: str) -> Iterator[Conn]:
    """One short-lived connection for creating tables; fails fast if the server is not there."""
    with translated_errors(what), psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        yield conn


def schema_name(namespace: str) -> str:
    """The quoted PostgreSQL schema of ``namespace``; raise ConfigurationError if it is not a safe name."""
    return f'"{checked_namespace(namespace)}"'


def ensure_schema(conn: Conn, namespace: str, *ddl: str) -> None:
    """Create the namespace's schema and the tables in ``ddl`` if missing, one creator at a time."""
    s = schema_name(namespace)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"syncbackbone:{namespace}"])
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}".encode())
        for statements in ddl:
            conn.execute(statements.format(s=s).encode())


def ensure_partitions(conn: Conn, namespace: str, table: str, partitions: int) -> None:
    """Give ``table`` one row per partition, or raise ConfigurationError if it has another count."""
    s = schema_name(namespace)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"syncbackbone:{namespace}"])
        row = conn.execute(f"SELECT count(*) FROM {s}.{table}".encode()).fetchone()
        count = int(row[0]) if row else 0
        if count == 0:
            conn.execute(
                f"INSERT INTO {s}.{table} (partition) SELECT generate_series(0, %s - 1)".encode(),
                [partitions],
            )
        elif count != partitions:
            raise ConfigurationError(
                f"namespace {namespace!r} has {count} partitions, but {partitions} were asked for; "
                "use the same partition count as when it was created"
            )


def ensure_bus(dsn: str, namespace: str, partitions: int) -> None:
    """Create the log and bus tables of ``namespace`` if missing."""
    with setup_connection(dsn, f"command bus {namespace!r}") as conn:
        ensure_schema(conn, namespace, LOG_DDL, BUS_DDL)
        ensure_partitions(conn, namespace, "partitions", partitions)
        ensure_partitions(conn, namespace, "command_partitions", partitions)


def drop_namespace(dsn: str, namespace: str) -> None:
    """Drop the namespace's schema and its read models' schemas (``<ns>__<projection>``)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s", [namespace, f"{namespace}\\_\\_%"]
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())
