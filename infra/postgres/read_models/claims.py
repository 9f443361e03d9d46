"""Partition ownership of projection workers on PostgreSQL: session advisory locks, shared fairly.

Each worker holds, on its own connection, the advisory lock ``(key(ns, projection), p)``
of every partition p it applies, plus a member lock ``(key(..., members), pid)`` so the
workers can count each other in ``pg_locks``. A worker takes free partitions up to
``ceil(partitions / members)`` and releases any above that, so a second worker gets
half of them within a claim round or two. A worker that dies (even by SIGKILL) loses
its connection and so its locks at once, and a survivor takes its partitions in the
next round. Ownership only spreads the work: exactly-once comes from the checkpoint
check in every session, so a worker that lost its lock unnoticed cannot apply twice.
This works whatever the event log is (the read models are in PostgreSQL anyway); a
Kafka consumer-group assignment can replace it behind the same ``PartitionClaims`` port.
"""

from __future__ import annotations

import contextlib
import logging
import math
import zlib

from ....domain.errors import LogUnavailable, SyncBackboneError
from ....projections.ports import PartitionClaims
from ..database import Conn, Database, translated

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A positive 31-bit advisory-lock key for ``name``."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class AdvisoryLockClaims(PartitionClaims):
    """Claims of one worker for one projection, held on one dedicated connection.

    ``member=False`` makes a passer-by (a CLI query catching up) that takes only free
    partitions and is not counted in the group, so the workers do not rebalance for it."""

    def __init__(self, database: Database, namespace: str, projection: str, member: bool = True) -> None:
        self._database, self._member = database, member
        self._what = f"partition claims of {namespace!r}/{projection!r}"
        self._key = lock_key(f"syncbackbone:{namespace}:{projection}")
        self._members_key = lock_key(f"syncbackbone:{namespace}:{projection}:members")
        self._conn: Conn | None = None
        self._owned: set[int] = set()

    def claim(self, partitions: int) -> frozenset[int]:
        try:
            with translated(self._what):
                conn = self._connection()
                fair = math.ceil(partitions / max(1, self._members(conn))) if self._member else partitions
                for p in sorted(self._owned)[fair:]:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", [self._key, p])
                    self._owned.discard(p)
                for p in range(partitions):
                    if len(self._owned) >= fair:
                        break
                    if p not in self._owned and self._try(conn, p):
                        self._owned.add(p)
        except LogUnavailable as e:
            log.warning("lost the claims connection (%s); owning nothing until it is back", e)
            self._drop()
        return frozenset(self._owned)

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = self._database.connect()
            if self._member:
                self._conn.execute("SELECT pg_advisory_lock(%s, pg_backend_pid())", [self._members_key])
            self._owned = set()
        return self._conn

    def _members(self, conn: Conn) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s::bigint::oid AND objsubid = 2 AND database = ("
            "  SELECT oid FROM pg_database WHERE datname = current_database())",
            [self._members_key],
        ).fetchone()
        return int(row[0]) if row else 1

    def _try(self, conn: Conn, partition: int) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", [self._key, partition]).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        self._drop()

    def _drop(self) -> None:
        """Unlock everything, then close the connection (closing alone frees the locks only once the
        server notices the disconnect, which may be after the next worker looked)."""
        conn, self._conn, self._owned = self._conn, None, set()
        if conn is not None:
            with contextlib.suppress(SyncBackboneError), translated(self._what):
                try:
                    conn.execute("SELECT pg_advisory_unlock_all()")
                finally:
                    conn.close()
