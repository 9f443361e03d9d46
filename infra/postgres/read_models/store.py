"""The PostgreSQL read-model store: one schema per copy of a projection, sessions with checkpoint CAS.

A session locks its partition's checkpoint row (``FOR UPDATE``) before anything else,
so two workers, a dead-letter retry and a rebuild swap serialise on it; a rebuild swap
renames schemas under an EXCLUSIVE lock on the live ``checkpoints`` table, which waits
for running sessions and makes new ones resolve the names again after the swap.
A session of the live copy NOTIFYs its batch in its own transaction (``notifications.py``):
the checkpoint it reached, and the last position of each feed it appended to; a swap
NOTIFYs a resync.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ....domain.errors import ConcurrencyConflict, ConfigurationError, InvalidInput
from ....projections.changes import Change, compact
from ....projections.errors import ChangeRejected, CheckpointMoved
from ....projections.ports import DeadEvent, DeadLetterEntry, ReadModelSession, ReadModelStore
from ....projections.projection import Projection
from ..database import Conn, Database, translated
from ..notifications import RESYNC, checkpoint_payload, feed_payload, send_notices
from ..tables import ddl
from .sql import BOOKKEEPING_DDL, copy_schema, forget_staging, q, table_ddl, write_batch

LETTER_COLUMNS = "seq, partition, log_offset, aggregate_id, version, type, error_type, error, parked, resolution"


def row_to_letter(row: Sequence[Any]) -> DeadLetterEntry:
    seq, partition, offset, agg, version, type_, error_type, error, parked, resolution = row
    dead = DeadEvent(int(partition), int(offset), agg, int(version), type_, error_type, error, bool(parked))
    return DeadLetterEntry(int(seq), dead, resolution)


class PostgresSession(ReadModelSession):
    """One transaction on one partition of one copy."""

    def __init__(
        self, conn: Conn, schema: str, projection: Projection, partition: int, channel: str | None = None
    ) -> None:
        self._conn, self._s, self._projection, self._partition = conn, schema, projection, partition
        self._channel = channel
        self._fed: dict[str, int] = {}
        self._advanced_to: int | None = None

    def seen(self, aggregate_ids: Collection[str]) -> dict[str, int]:
        rows = self._conn.execute(
            f"SELECT aggregate_id, version FROM {self._s}.seen WHERE aggregate_id = ANY(%s)".encode(),
            [list(aggregate_ids)],
        ).fetchall()
        return {str(a): int(v) for a, v in rows}

    def parked(self, aggregate_ids: Collection[str]) -> set[str]:
        rows = self._conn.execute(
            f"SELECT DISTINCT aggregate_id FROM {self._s}.dead_letters"
            " WHERE resolution IS NULL AND aggregate_id = ANY(%s)".encode(),
            [list(aggregate_ids)],
        ).fetchall()
        return {str(a) for (a,) in rows}

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        batches = compact(changes, self._projection.tables_by_name)
        fed: dict[str, int] = {}
        try:
            with translated(f"read models {self._s}"), self._conn.transaction():  # a savepoint: a refused
                for batch in batches:  # batch leaves the session usable
                    fed.update(write_batch(self._conn, self._s, batch))
        except ChangeRejected:
            forget_staging(self._conn)
            raise
        except (InvalidInput, ConcurrencyConflict) as e:  # data PostgreSQL refuses
            forget_staging(self._conn)
            raise ChangeRejected(str(e)) from e
        for collection, position in fed.items():
            self._fed[collection] = max(position, self._fed.get(collection, 0))

    def record(self, seen: Mapping[str, int], dead: Sequence[DeadEvent]) -> None:
        if seen:
            self._conn.execute(
                f"INSERT INTO {self._s}.seen (aggregate_id, version) SELECT * FROM unnest(%s::text[], %s::bigint[])"
                " ON CONFLICT (aggregate_id) DO UPDATE SET version = EXCLUDED.version".encode(),
                [list(seen), list(seen.values())],
            )
        if dead:
            with self._conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {self._s}.dead_letters (partition, log_offset, aggregate_id, version, type,"
                    " error_type, error, parked) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)".encode(),
                    [
                        (d.partition, d.offset, d.aggregate_id, d.version, d.type, d.error_type, d.error, d.parked)
                        for d in dead
                    ],
                )

    def open_letters(self, aggregate_id: str) -> list[DeadLetterEntry]:
        rows = self._conn.execute(
            f"SELECT {LETTER_COLUMNS} FROM {self._s}.dead_letters"
            " WHERE aggregate_id = %s AND resolution IS NULL ORDER BY seq FOR UPDATE".encode(),
            [aggregate_id],
        ).fetchall()
        return [row_to_letter(r) for r in rows]

    def resolve(self, seqs: Collection[int], resolution: str) -> None:
        if seqs:
            self._conn.execute(
                f"UPDATE {self._s}.dead_letters SET resolution = %s, resolved_at = now() WHERE seq = ANY(%s)".encode(),
                [resolution, list(seqs)],
            )

    def advance(self, next_offset: int) -> None:
        self._conn.execute(
            f"UPDATE {self._s}.checkpoints SET next_offset = %s WHERE partition = %s".encode(),
            [next_offset, self._partition],
        )
        self._advanced_to = next_offset

    def announce(self) -> None:
        """NOTIFY the live copy's channel of this batch (delivered if and when the transaction commits)."""
        if self._channel is None:
            return
        payloads = [feed_payload(collection, position) for collection, position in sorted(self._fed.items())]
        if self._advanced_to is not None:
            payloads.append(checkpoint_payload(self._partition, self._advanced_to))
        send_notices(self._conn, self._channel, payloads)


class PostgresReadModelStore(ReadModelStore):
    """One copy of a projection's read models in schema ``<ns>__<projection>[__<suffix>]``."""

    def __init__(self, database: Database, namespace: str, projection: Projection, suffix: str = "") -> None:
        self.projection, self.namespace, self.database = projection, namespace, database
        self.schema_name = copy_schema(namespace, projection.name, suffix)
        self.schema = q(self.schema_name)
        self.channel: str | None = None if suffix else self.schema_name
        """Where the sessions of the live copy announce their commits; a scratch copy announces nothing."""

    def install(self, partitions: int) -> None:
        with self.database.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"syncbackbone:{self.schema_name}"])
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}".encode())
            conn.execute(ddl(BOOKKEEPING_DDL, self.schema))
            for table in self.projection.tables:
                for statement in table_ddl(self.schema, table):
                    conn.execute(statement.encode())
            conn.execute(
                f"INSERT INTO {self.schema}.checkpoints (partition) SELECT generate_series(0, %s - 1)"
                " ON CONFLICT DO NOTHING".encode(),
                [partitions],
            )

    def checkpoints(self) -> dict[int, int]:
        rows = self.database.fetchall(f"SELECT partition, next_offset FROM {self.schema}.checkpoints")
        return {int(p): int(o) for p, o in rows}

    @contextmanager
    def session(self, partition: int, expected: int | None) -> Iterator[ReadModelSession]:
        with self.database.connection() as conn:
            try:
                with conn.transaction():
                    row = conn.execute(
                        f"SELECT next_offset FROM {self.schema}.checkpoints WHERE partition = %s FOR UPDATE".encode(),
                        [partition],
                    ).fetchone()
                    if row is None:
                        raise ConfigurationError(f"{self.schema_name} has no partition {partition}: install it first")
                    if expected is not None and int(row[0]) != expected:
                        raise CheckpointMoved(
                            f"{self.schema_name} partition {partition} is at {row[0]}, not {expected}"
                        )
                    session = PostgresSession(conn, self.schema, self.projection, partition, self.channel)
                    yield session
                    session.announce()
            except BaseException:
                forget_staging(conn)
                raise

    def dead_letters(
        self, limit: int, include_resolved: bool = False, aggregate_id: str | None = None
    ) -> list[DeadLetterEntry]:
        where = ["TRUE" if include_resolved else "resolution IS NULL"]
        params: list[Any] = []
        if aggregate_id is not None:
            where.append("aggregate_id = %s")
            params.append(aggregate_id)
        rows = self.database.fetchall(
            f"SELECT {LETTER_COLUMNS} FROM {self.schema}.dead_letters WHERE {' AND '.join(where)}"
            " ORDER BY seq LIMIT %s",
            [*params, limit],
        )
        return [row_to_letter(r) for r in rows]

    def scratch_copy(self, purpose: str) -> PostgresReadModelStore:
        suffix = f"{purpose}_{uuid.uuid4().hex[:6]}"
        return PostgresReadModelStore(self.database, self.namespace, self.projection, suffix)

    def swap_in(self, copy: ReadModelStore) -> None:
        if not isinstance(copy, PostgresReadModelStore):
            raise TypeError("only a PostgreSQL copy can be swapped into PostgreSQL read models")
        retired = q(copy_schema(self.namespace, self.projection.name, f"retired_{uuid.uuid4().hex[:6]}"))
        with self.database.connection() as conn:
            with conn.transaction():
                conn.execute(f"LOCK TABLE {self.schema}.checkpoints IN EXCLUSIVE MODE".encode())
                conn.execute(f"ALTER SCHEMA {self.schema} RENAME TO {retired}".encode())
                conn.execute(f"ALTER SCHEMA {copy.schema} RENAME TO {self.schema}".encode())
                send_notices(conn, self.schema_name, [RESYNC])
            conn.execute(f"DROP SCHEMA {retired} CASCADE".encode())

    def diff(self, copy: ReadModelStore, limit: int) -> list[str]:
        if not isinstance(copy, PostgresReadModelStore):
            raise TypeError("only a PostgreSQL copy can be compared with PostgreSQL read models")
        from .diff import diff_copies

        with self.database.connection() as conn, conn.transaction():
            return diff_copies(conn, self.projection, self.schema, copy.schema, limit)

    def discard(self) -> None:
        self.database.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
