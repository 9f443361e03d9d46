"""The query side in Python: documents, the change feed and the audit trail, with read-your-writes.

Queries read the live copy of each projection (schema ``<ns>__<projection>``). A query
may first ``wait_for`` the positions a command result carries: it returns once the
projection's checkpoint has passed every one of them, or raises ProjectionLagging.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from psycopg.types.json import Jsonb

from ....domain.names import checked_collection, checked_name
from ....domain.records import Position
from ....projections.errors import NotFound, ProjectionLagging
from ....projections.queries import DocumentView, Page, ReadModelQueries, checked_limit
from ...common.backoff import poll
from ..database import Database
from .sql import copy_schema, q


def iso_times(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its timestamps as ISO 8601 text."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


class ReadModels(ReadModelQueries):
    """Queries over the live read models of one namespace."""

    def __init__(self, database: Database, namespace: str) -> None:
        self._database, self.namespace = database, namespace

    def _schema(self, projection: str) -> str:
        return q(copy_schema(self.namespace, projection))

    def document(self, collection: str, doc_id: str, include_deleted: bool = False) -> DocumentView:
        """One document, or NotFound (also when deleted, unless ``include_deleted``)."""
        checked_collection(collection)
        checked_name(doc_id, "id")
        row = self._database.fetchone(
            f"SELECT collection, id, version, data, deleted, updated_at FROM {self._schema('documents')}.documents"
            " WHERE collection = %s AND id = %s",
            [collection, doc_id],
        )
        if row is None or (row[4] and not include_deleted):
            raise NotFound(f"no document {collection}/{doc_id}")
        return DocumentView(*row)

    def documents(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 100,
        include_deleted: bool = False,
    ) -> Page:
        """Documents of ``collection`` whose data contains ``where``, by id, after the cursor ``after``."""
        checked_collection(collection)
        checked_limit(limit)
        clauses = ["collection = %s", "id > %s"]
        params: list[Any] = [collection, after or ""]
        if where:
            clauses.append("data @> %s")
            params.append(Jsonb(dict(where)))
        if not include_deleted:
            clauses.append("NOT deleted")
        rows = self._database.fetchall(
            f"SELECT collection, id, version, data, deleted, updated_at FROM {self._schema('documents')}.documents"
            f" WHERE {' AND '.join(clauses)} ORDER BY id LIMIT %s",
            [*params, limit],
        )
        items = [DocumentView(*r) for r in rows]
        return Page(items, items[-1].id if len(items) == limit else None)

    def audit(self, aggregate_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Who did what to ``aggregate_id``, through which command and when, by version."""
        checked_limit(limit)
        rows = self._database.fetchdicts(
            f"SELECT version, type, actor, causation_id, correlation_id, client_id, tenant, occurred_at,"
            f" recorded_at, log_partition, log_offset FROM {self._schema('audit')}.audit"
            " WHERE aggregate_id = %s ORDER BY version LIMIT %s",
            [aggregate_id, limit],
        )
        if not rows:
            raise NotFound(f"no audit entries for {aggregate_id!r}")
        return [iso_times(r) for r in rows]

    def changes(self, collection: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The change feed of ``collection`` after position ``after`` (a cursor), oldest first."""
        checked_collection(collection)
        checked_limit(limit)
        rows = self._database.fetchdicts(
            f"SELECT position, id, version, op, data, unset, recorded_at, causation_id, actor"
            f" FROM {self._schema('changes')}.changes WHERE collection = %s AND position > %s"
            " ORDER BY position LIMIT %s",
            [collection, after, limit],
        )
        return [iso_times(r) for r in rows]

    def generation(self, projection: str) -> int:
        """Which build of ``projection``'s read models is live (a rebuild swaps in a new one); 0 if none."""
        row = self._database.fetchone(
            "SELECT oid::bigint FROM pg_namespace WHERE nspname = %s", [copy_schema(self.namespace, projection)]
        )
        return int(row[0]) if row else 0

    def checkpoints(self, projection: str) -> dict[int, int]:
        """The next offset ``projection`` will apply, per partition."""
        rows = self._database.fetchall(f"SELECT partition, next_offset FROM {self._schema(projection)}.checkpoints")
        return {int(p): int(o) for p, o in rows}

    def wait_for(
        self, positions: Collection[Position], timeout_s: float, projections: Sequence[str] = ("documents",)
    ) -> None:
        """Return once every projection's checkpoint has passed every position; else ProjectionLagging."""
        deadline = time.monotonic() + timeout_s
        for projection in projections:
            caught_up = partial(self._caught_up, projection, positions)
            if not poll(caught_up, max(0.0, deadline - time.monotonic())) and (
                lagging := self._behind(projection, positions)
            ):
                p, at = lagging
                raise ProjectionLagging(
                    f"projection {projection!r} has not reached partition {p.partition} offset {p.offset}"
                    f" within {timeout_s:g} s (it is at offset {at}); is a projection runner running?"
                    " start one with `syncbackbone serve --http HOST:PORT` or `syncbackbone projections run`"
                )

    def _caught_up(self, projection: str, positions: Collection[Position]) -> bool:
        return self._behind(projection, positions) is None

    def _behind(self, projection: str, positions: Collection[Position]) -> tuple[Position, int] | None:
        if not positions:
            return None
        at = self.checkpoints(projection)
        for p in positions:
            if at.get(p.partition, 0) <= p.offset:
                return p, at.get(p.partition, 0)
        return None
