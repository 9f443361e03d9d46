"""The query port of the read side: documents, the change feed, the audit trail, read-your-writes.

Application services (``infra/app``) see only this class; the PostgreSQL read models
implement it (``infra/postgres/read_models/queries.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..domain.errors import InvalidInput
from ..domain.records import Position

MAX_LIMIT = 1000
"""The most rows one query returns."""


def checked_limit(limit: int) -> int:
    """``limit`` if it is between 1 and MAX_LIMIT, else InvalidInput."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    return limit


@dataclass(frozen=True, slots=True)
class DocumentView:
    """A document as the ``documents`` read model holds it."""

    collection: str
    id: str
    version: int
    data: dict[str, Any]
    deleted: bool
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of documents, and the cursor of the next page (None on the last)."""

    items: list[DocumentView]
    next_after: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"items": [d.as_dict() for d in self.items], "next_after": self.next_after}


class ReadModelQueries(ABC):
    """Queries over the live read models of one namespace."""

    @abstractmethod
    def document(self, collection: str, doc_id: str, include_deleted: bool = False) -> DocumentView:
        """One document, or NotFound (also when deleted, unless ``include_deleted``)."""

    @abstractmethod
    def documents(
        self,
        collection: str,
        where: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 100,
        include_deleted: bool = False,
    ) -> Page:
        """Documents of ``collection`` whose data contains ``where``, by id, after the cursor ``after``."""

    @abstractmethod
    def audit(self, aggregate_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Who did what to ``aggregate_id``, through which command and when, by version; NotFound if nothing."""

    @abstractmethod
    def changes(self, collection: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The change feed of ``collection`` after position ``after`` (a cursor), oldest first."""

    @abstractmethod
    def generation(self, projection: str) -> int:
        """Which build of ``projection``'s read models is live (a rebuild swaps in a new one); 0 if none."""

    @abstractmethod
    def checkpoints(self, projection: str) -> dict[int, int]:
        """The next offset ``projection`` will apply, per partition."""

    @abstractmethod
    def wait_for(
        self, positions: Collection[Position], timeout_s: float, projections: Sequence[str] = ("documents",)
    ) -> None:
        """Return once every projection's checkpoint has passed every position; else ProjectionLagging."""
