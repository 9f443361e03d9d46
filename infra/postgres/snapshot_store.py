"""The PostgreSQL snapshot store: table ``<ns>.snapshots``, one row per aggregate (its latest snapshot).

A row keeps the aggregate id and type, the version and the log position (partition,
offset) of the event the snapshot reflects, the ``class_version`` of the code that took
it, and the state: eventsourcing's ``DocumentSnapshot`` turned into bytes by its
``Mapper`` (JSON transcoding, then the same zlib compression and AES-GCM cipher as
event payloads when they are configured). A row that cannot be turned back into a
document is reported as unusable, never raised: the caller rebuilds from events.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper
from eventsourcing.persistence import StoredEvent as EsStoredEvent
from eventsourcing.utils import Environment

from ...commands.ports import SnapshotLookup, SnapshotStore
from ...domain.documents import AGGREGATE_TYPE
from ...domain.errors import ConfigurationError
from ...domain.records import Position
from ...domain.snapshots import (
    SNAPSHOT_TOPIC,
    DocumentSnapshot,
    DocumentState,
    SnapshotPoint,
    SnapshotUnusable,
    restore,
    snapshot_id,
)
from ..settings import Settings
from .database import Database
from .tables import ensure_schema, schema_name

log = logging.getLogger(__name__)

SNAPSHOT_DDL = """
CREATE TABLE IF NOT EXISTS {s}.snapshots (
    aggregate_id text PRIMARY KEY,
    aggregate_type text NOT NULL,
    {log_place},
    class_version integer NOT NULL,
    topic text NOT NULL,
    state bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
"""
COLUMNS = "aggregate_id, version, log_partition, log_offset, class_version, topic, state, taken_at"


def snapshot_mapper(settings: Settings | None = None) -> Mapper[Any]:
    """eventsourcing's mapper for snapshots: JSON, compressed and encrypted like event payloads."""
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    compressor = ZlibCompressor() if settings and settings.compress else None
    cipher = None
    if settings and settings.cipher_key:
        try:
            cipher = AESCipher(Environment(env={AESCipher.CIPHER_KEY: settings.cipher_key}))
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"SYNC_CIPHER_KEY is not a base64 AES key of 16/24/32 bytes: {e}") from e
    return Mapper(transcoder, compressor, cipher)


class PostgresSnapshotStore(SnapshotStore):
    """Snapshots in ``<namespace>.snapshots``; rows restored with ``state_cls`` (upcasting older ones)."""

    def __init__(
        self,
        dsn: str,
        namespace: str,
        mapper: Mapper[Any] | None = None,
        state_cls: type[DocumentState] = DocumentState,
    ) -> None:
        self.namespace, self._s = namespace, schema_name(namespace)
        self._mapper = mapper or snapshot_mapper()
        self._state_cls = state_cls
        self._database = Database(
            dsn, f"snapshot store {namespace!r}", 2, lambda conn: ensure_schema(conn, namespace, SNAPSHOT_DDL)
        )

    def save(self, points: Sequence[SnapshotPoint], overwrite: Collection[str] = ()) -> int:
        if not points:
            return 0
        rows = [self._row(p) for p in points]
        columns = list(zip(*rows, strict=True))
        return self._database.execute(
            f"INSERT INTO {self._s}.snapshots AS s (aggregate_id, aggregate_type, version, log_partition,"
            " log_offset, class_version, topic, state) SELECT * FROM unnest(%s::text[], %s::text[],"
            " %s::bigint[], %s::int[], %s::bigint[], %s::int[], %s::text[], %s::bytea[])"
            " ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version,"
            " log_partition = excluded.log_partition, log_offset = excluded.log_offset,"
            " class_version = excluded.class_version, topic = excluded.topic, state = excluded.state,"
            " taken_at = now() WHERE s.version < excluded.version OR s.aggregate_id = ANY(%s::text[])",
            [*(list(c) for c in columns), list(overwrite)],
        )

    def _row(self, point: SnapshotPoint) -> tuple[Any, ...]:
        stored = self._mapper.to_stored_event(DocumentSnapshot.of(point.document, self._state_cls))
        p = point.position
        version = self._state_cls.class_version
        return (point.aggregate_id, AGGREGATE_TYPE, point.version, p.partition, p.offset, version, stored.topic,
                stored.state)  # fmt: skip

    def load(self, aggregate_ids: Collection[str]) -> SnapshotLookup:
        lookup = SnapshotLookup()
        if not aggregate_ids:
            return lookup
        rows = self._database.fetchall(
            f"SELECT {COLUMNS} FROM {self._s}.snapshots WHERE aggregate_id = ANY(%s)", [list(aggregate_ids)]
        )
        for row in rows:
            try:
                lookup.found[row[0]] = self._point(row)
            except SnapshotUnusable as e:
                lookup.unusable[row[0]] = describe(row, str(e))
            except Exception as e:  # noqa: BLE001 - a row nobody foresaw is still only an unusable row
                lookup.unusable[row[0]] = describe(row, f"{type(e).__name__}: {e}")
        return lookup

    def _point(self, row: Sequence[Any]) -> SnapshotPoint:
        agg, version, partition, offset, _, topic, state, taken_at = row
        if topic != SNAPSHOT_TOPIC:
            raise SnapshotUnusable(f"its topic is {topic!r}, not {SNAPSHOT_TOPIC!r}")
        stored = EsStoredEvent(snapshot_id(agg), int(version), topic, bytes(state))
        try:
            snapshot = self._mapper.to_domain_event(stored)
        except Exception as e:  # noqa: BLE001 - whatever the bytes are, the row is unusable, not fatal
            raise SnapshotUnusable(f"its state cannot be decoded: {type(e).__name__}: {e}") from e
        if not isinstance(snapshot, DocumentSnapshot):
            raise SnapshotUnusable(f"its state is a {type(snapshot).__name__}, not a DocumentSnapshot")
        doc = restore(snapshot, agg, self._state_cls)
        return SnapshotPoint(doc, Position(int(partition), int(offset)), int(taken_at.timestamp() * 1000))

    def delete(self, aggregate_ids: Collection[str]) -> int:
        """Drop the snapshots of ``aggregate_ids``; return how many there were."""
        return self._database.execute(
            f"DELETE FROM {self._s}.snapshots WHERE aggregate_id = ANY(%s)", [list(aggregate_ids)]
        )

    def close(self) -> None:
        self._database.close()


def describe(row: Sequence[Any], reason: str) -> str:
    """One line naming the snapshot row and what is wrong with it."""
    agg, version, _, _, class_version, _, _, taken_at = row
    at = taken_at.isoformat() if isinstance(taken_at, datetime) else taken_at
    return f"snapshot of {agg} (v{version}, class_version {class_version}, taken {at}) is unusable: {reason}"
