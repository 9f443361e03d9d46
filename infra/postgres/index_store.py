"""Checkpoints of the Kafka log's partition index, in PostgreSQL: restarts read the tail, not the history.

A Kafka reader validates a partition in log order (G8) into an in-memory index. Rebuilding
that index from offset 0 makes every restart cost the whole history, so the index is saved
here now and then: ``<ns>.kafka_index`` holds one row per valid event, (aggregate, version)
-> (partition, offset, causing command), and ``<ns>.kafka_index_checkpoints`` says, per
partition, up to which offset those rows are complete and which event is the last one (to
notice a topic that was recreated under the same name). A restarted log starts each
partition at its checkpoint and reads only the records after it; what lies below is looked
up here and the events are fetched from Kafka by offset.

The rows are a pure function of the log, so any reader may save them: concurrent savers
insert the same rows (``ON CONFLICT DO NOTHING``) and a checkpoint only moves forward. Rows
are never deleted here: a log that finds a checkpoint not matching its topic (a topic
recreated under the same name) reads that partition from offset 0 and does not save it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ...domain.records import StoredEvent
from ..kafka.index.store import Checkpoint, IndexStore, Located
from .database import Database
from .tables import ensure_schema, schema_name

INDEX_DDL = """
CREATE TABLE IF NOT EXISTS {s}.kafka_index (
    aggregate_id text NOT NULL,
    {log_place},
    causation_id text,
    PRIMARY KEY (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS kafka_index_by_offset ON {s}.kafka_index (log_partition, log_offset);
CREATE INDEX IF NOT EXISTS kafka_index_by_command ON {s}.kafka_index (aggregate_id, causation_id)
    WHERE causation_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.kafka_index_checkpoints (
    log_partition integer PRIMARY KEY,
    next_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    last_aggregate_id text NOT NULL,
    last_version bigint NOT NULL
);
"""


class PostgresIndexStore(IndexStore):
    """The saved index of a Kafka log's partitions in ``<namespace>``; connects on first use (to ``dsn``,
    or to what ``dsn()`` returns then), and fails fast for a while after PostgreSQL could not be reached."""

    def __init__(self, dsn: str | Callable[[], str], namespace: str) -> None:
        self.namespace, self.schema = namespace, schema_name(namespace)
        self._database = Database(
            dsn,
            f"Kafka index store {namespace!r}",
            2,
            lambda conn: ensure_schema(conn, namespace, INDEX_DDL),
            lazy=True,
        )

    def checkpoint(self, partition: int) -> Checkpoint | None:
        """The partition's saved checkpoint, if any."""
        row = self._database.fetchone(
            f"SELECT next_offset, last_offset, last_aggregate_id, last_version"
            f" FROM {self.schema}.kafka_index_checkpoints WHERE log_partition = %s",
            [partition],
        )
        return Checkpoint(int(row[0]), int(row[1]), row[2], int(row[3])) if row else None

    def versions(self, aggregate_ids: Collection[str], below: int) -> dict[str, int]:
        """Each aggregate's latest version at an offset below ``below`` (absent: none)."""
        rows = self._database.fetchall(
            f"SELECT DISTINCT ON (aggregate_id) aggregate_id, version FROM {self.schema}.kafka_index"
            " WHERE aggregate_id = ANY(%s) AND log_offset < %s ORDER BY aggregate_id, version DESC",
            [list(aggregate_ids), below],
        )
        return {agg: int(version) for agg, version in rows}

    def versions_between(self, wanted: Mapping[str, tuple[int, int]]) -> list[Located]:
        """For each aggregate, its versions from the first to the last asked for; by aggregate, then version."""
        aggregates = list(wanted)
        firsts, lasts = [wanted[a][0] for a in aggregates], [wanted[a][1] for a in aggregates]
        return self._located(
            "(aggregate_id, version) IN (SELECT a, generate_series(f, l) FROM unnest(%s::text[], %s::bigint[],"
            " %s::bigint[]) AS w(a, f, l)) ORDER BY aggregate_id, version",
            [aggregates, firsts, lasts],
        )

    def partition_from(self, partition: int, offset: int, below: int, limit: int) -> list[Located]:
        """Up to ``limit`` events of ``partition`` from ``offset`` on and below ``below``, in offset order."""
        return self._located(
            "log_partition = %s AND log_offset >= %s AND log_offset < %s ORDER BY log_offset LIMIT %s",
            [partition, offset, below, limit],
        )

    def commands(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[Located]]:
        """The events each (aggregate, command id) caused, in version order."""
        aggregates, commands = [k[0] for k in keys], [k[1] for k in keys]
        rows = self._database.fetchall(
            f"SELECT aggregate_id, version, log_offset, causation_id FROM {self.schema}.kafka_index"
            " WHERE (aggregate_id, causation_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
            " ORDER BY aggregate_id, version",
            [aggregates, commands],
        )
        found: dict[tuple[str, str], list[Located]] = {}
        for agg, version, offset, command_id in rows:
            found.setdefault((agg, command_id), []).append(Located(agg, int(version), int(offset)))
        return found

    def save(self, partition: int, events: Sequence[StoredEvent], checkpoint: Checkpoint) -> None:
        """Index ``events`` of ``partition`` and move its checkpoint forward to ``checkpoint``, in one transaction."""
        columns: list[list[Any]] = [[], [], [], []]
        for s in events:
            for column, value in zip(
                columns, (s.aggregate_id, s.version, s.position.offset, s.event.meta.causation_id), strict=True
            ):
                column.append(value)
        c = checkpoint
        with self._database.connection() as conn, conn.transaction():
            conn.execute(
                f"INSERT INTO {self.schema}.kafka_index"
                " (aggregate_id, version, log_partition, log_offset, causation_id) SELECT a, v, %s, o, c"
                " FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[]) AS t(a, v, o, c)"
                " ON CONFLICT DO NOTHING".encode(),
                [partition, *columns],
            )
            conn.execute(
                f"INSERT INTO {self.schema}.kafka_index_checkpoints AS k VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (log_partition) DO UPDATE SET next_offset = excluded.next_offset,"
                " last_offset = excluded.last_offset, last_aggregate_id = excluded.last_aggregate_id,"
                " last_version = excluded.last_version WHERE k.next_offset < excluded.next_offset".encode(),
                [partition, c.next_offset, c.last_offset, c.last_aggregate_id, c.last_version],
            )

    def removal_hint(self, partition: int) -> str:
        """The SQL that deletes the saved index of ``partition``."""
        return (
            f"DELETE FROM {self.schema}.kafka_index WHERE log_partition = {partition};"
            f" DELETE FROM {self.schema}.kafka_index_checkpoints WHERE log_partition = {partition}"
        )

    def close(self) -> None:
        self._database.close()

    def _located(self, where: str, params: Sequence[object]) -> list[Located]:
        rows = self._database.fetchall(
            f"SELECT aggregate_id, version, log_offset FROM {self.schema}.kafka_index WHERE {where}", params
        )
        return [Located(agg, int(version), int(offset)) for agg, version, offset in rows]
