"""Comparing two copies of a projection's read models, row by row, in SQL (for ``verify``)."""

from __future__ import annotations

import json
from typing import Any

from ....projections.changes import Table
from ....projections.errors import CheckpointMoved
from ....projections.projection import Projection
from ..database import Conn
from .sql import q


def diff_copies(conn: Conn, projection: Projection, live: str, copy: str, limit: int) -> list[str]:
    """Rows only in ``live`` or only in ``copy`` (schemas, quoted), inside the caller's transaction.

    The live checkpoints are locked FOR SHARE first, so no runner commits while the rows are compared;
    raise CheckpointMoved if the two copies are not at the same checkpoints.
    """
    live_at = checkpoints(conn, live, lock=True)
    copy_at = checkpoints(conn, copy, lock=False)
    if live_at != copy_at:
        raise CheckpointMoved(f"live read models are at {live_at}, the replay at {copy_at}")
    drift: list[str] = []
    for table in projection.tables:
        drift += one_sided(conn, table, live, copy, "only in the live read models", limit - len(drift))
        drift += one_sided(conn, table, copy, live, "missing from the live read models", limit - len(drift))
    return drift


def checkpoints(conn: Conn, s: str, lock: bool) -> dict[int, int]:
    rows = conn.execute(
        f"SELECT partition, next_offset FROM {s}.checkpoints ORDER BY partition{' FOR SHARE' if lock else ''}".encode()
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def one_sided(conn: Conn, table: Table, left: str, right: str, what: str, limit: int) -> list[str]:
    """Up to ``limit`` rows of ``table`` in ``left`` and not in ``right`` (as multisets), described."""
    if limit <= 0:
        return []
    cols = ", ".join(q(c) for c in table.compared)
    name = q(table.name)
    rows = conn.execute(
        f"(SELECT {cols} FROM {left}.{name} EXCEPT ALL SELECT {cols} FROM {right}.{name}) LIMIT %s".encode(),
        [limit],
    ).fetchall()
    return [f"{table.name}: {what}: {describe(table, row)}" for row in rows]


def describe(table: Table, row: Any) -> str:
    return json.dumps(dict(zip(table.compared, row, strict=True)), default=str, sort_keys=True)
