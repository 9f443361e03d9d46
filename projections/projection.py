"""The projection API: a name, the tables it owns, and one handler per event type it handles.

A handler takes a ``Fact`` (the stored event, decoded on first use) and returns the
read-model changes it causes. Dispatch is a dict lookup on the event's type name, so
the types a projection handles are the keys of its ``handlers``; other types pass by.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ..domain.documents import DocumentEvent, split_aggregate_id
from ..domain.records import EventMeta, StoredEvent
from .changes import Change, Table
from .errors import UnknownProjection

Decoder = Callable[[StoredEvent], DocumentEvent]
E = TypeVar("E")


@dataclass(slots=True)
class Fact:
    """One stored event as a handler sees it; the payload is decoded only if ``event`` is used."""

    stored: StoredEvent
    decoder: Decoder
    _event: DocumentEvent | None = field(default=None, repr=False)

    @property
    def event(self) -> DocumentEvent:
        if self._event is None:
            self._event = self.decoder(self.stored)
        return self._event

    def event_as(self, cls: type[E]) -> E:
        """The decoded event, checked to be a ``cls``."""
        event = self.event
        if not isinstance(event, cls):
            raise TypeError(f"{self.stored.event.type} decoded as {type(event).__name__}, not {cls.__name__}")
        return event

    @property
    def aggregate_id(self) -> str:
        return self.stored.event.aggregate_id

    @property
    def version(self) -> int:
        return self.stored.event.version

    @property
    def meta(self) -> EventMeta:
        return self.stored.event.meta

    @property
    def collection_and_id(self) -> tuple[str, str]:
        return split_aggregate_id(self.aggregate_id)

    @property
    def recorded_at(self) -> datetime:
        """When the log recorded the event (deterministic on replay)."""
        return from_ms(self.stored.recorded_at_ms)


Handler = Callable[[Fact], Sequence[Change]]


def from_ms(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Projection:
    """A fold of the event log into read-model tables."""

    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler]

    @property
    def handles(self) -> frozenset[str]:
        """The event types this projection reacts to."""
        return frozenset(self.handlers)

    @property
    def tables_by_name(self) -> dict[str, Table]:
        return {t.name: t for t in self.tables}

    def handle(self, fact: Fact) -> Sequence[Change]:
        """The changes ``fact`` causes (none for an event type this projection does not handle)."""
        handler = self.handlers.get(fact.stored.event.type)
        return handler(fact) if handler is not None else ()


class Registry:
    """Projections by name."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        self._by_name = {p.name: p for p in projections}

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._by_name)

    def get(self, name: str) -> Projection:
        """The projection called ``name``, or UnknownProjection naming the known ones."""
        found = self._by_name.get(name)
        if found is None:
            raise UnknownProjection(f"no projection {name!r}; known: {', '.join(self._by_name)}")
        return found
