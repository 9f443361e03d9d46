"""The tables of the embedded log and bus, and how a namespace's schema gets them.

Every table lives in a schema named after the namespace (``"sync"``, a test's
``"t1a2b..."``). DDL is written as templates: ``{s}`` is the quoted schema and
``{<group>}`` one of ``COLUMN_GROUPS``, the columns several tables share (written once).
``ensure_schema`` creates what is missing under a transaction-level advisory lock, so
processes starting together do not race on ``CREATE``.
"""

from __future__ import annotations

from ...domain.errors import ConfigurationError
from ...domain.names import checked_namespace
from .database import Conn

COLUMN_GROUPS = {
    "next_offsets": "partition integer PRIMARY KEY, next_offset bigint NOT NULL DEFAULT 0",
    "command_record": (
        'partition integer NOT NULL, "offset" bigint NOT NULL, key text, value bytea NOT NULL,'
        " header_keys text[] NOT NULL DEFAULT '{}', header_values bytea[] NOT NULL DEFAULT '{}'"
    ),
    "log_place": "version bigint NOT NULL, log_partition integer NOT NULL, log_offset bigint NOT NULL",
}
"""``next_offsets``: the next offset of each partition; ``command_record``: a command as it was sent
(kept whole by a dead letter); ``log_place``: where an aggregate's version sits in the event log."""

LOG_DDL = """
CREATE TABLE IF NOT EXISTS {s}.partitions (
    {next_offsets},
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
CREATE TABLE IF NOT EXISTS {s}.command_partitions ({next_offsets});
CREATE TABLE IF NOT EXISTS {s}.commands (
    {command_record},
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
    {command_record},
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


def ddl(template: str, schema: str) -> bytes:
    """The statements of ``template`` for ``schema`` (quoted), its column groups filled in."""
    return template.format(s=schema, **COLUMN_GROUPS).encode()


def schema_name(namespace: str) -> str:
    """The quoted PostgreSQL schema of ``namespace``; raise ConfigurationError if it is not a safe name."""
    return f'"{checked_namespace(namespace)}"'


def ensure_schema(conn: Conn, namespace: str, *templates: str) -> None:
    """Create the namespace's schema and the tables of ``templates`` if missing, one creator at a time."""
    s = schema_name(namespace)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"syncbackbone:{namespace}"])
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}".encode())
        for template in templates:
            conn.execute(ddl(template, s))


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


def ensure_log(conn: Conn, namespace: str, partitions: int) -> None:
    """Create the event log's tables of ``namespace`` if missing."""
    ensure_schema(conn, namespace, LOG_DDL)
    ensure_partitions(conn, namespace, "partitions", partitions)


def ensure_bus(conn: Conn, namespace: str, partitions: int) -> None:
    """Create the log's and the bus's tables of ``namespace`` if missing."""
    ensure_schema(conn, namespace, LOG_DDL, BUS_DDL)
    ensure_partitions(conn, namespace, "partitions", partitions)
    ensure_partitions(conn, namespace, "command_partitions", partitions)
