"""The shape of a recorded event, shared by the write side and the read side.

``NewEvent`` is what a decision produces once it is encoded; ``StoredEvent`` is the
same event with its position in the log. Payloads are opaque bytes here: the codec
in ``infra`` turns domain events into payloads and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EventMeta:
    """Envelope metadata carried by every event."""

    event_id: str = ""
    aggregate_type: str = "document"
    schema_version: int = 1
    occurred_at_ms: int = 0
    causation_id: str | None = None
    correlation_id: str | None = None
    actor: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    compression: str | None = None
    encryption_key_id: str | None = None
    trace_context: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended: version n of aggregate_id."""

    aggregate_id: str
    version: int
    type: str
    payload: bytes
    meta: EventMeta = field(default_factory=EventMeta)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record sits in a partitioned log."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the log, with its position."""

    event: NewEvent
    position: Position
    recorded_at_ms: int = 0

    @property
    def aggregate_id(self) -> str:
        return self.event.aggregate_id

    @property
    def version(self) -> int:
        return self.event.version
