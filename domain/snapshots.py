"""Snapshots of the Document aggregate, through eventsourcing's ``Snapshot``, ``class_version`` and upcasting.

``Document`` is a frozen, slotted dataclass folded by ``apply``; eventsourcing snapshots
objects whose ``__dict__`` is their state. ``DocumentState`` is that object: it carries a
document's fields, and its ``class_version`` says which shape of them it writes. When the
shape changes, bump ``class_version`` and add ``upcast_v<N>_v<N+1>(state)``: snapshots
taken by older code are then upcast as they are restored (eventsourcing's own mechanism).
A snapshot that cannot be restored raises ``SnapshotUnusable``; callers ignore it and
rebuild the state from events. Errors, under the one tree of ``syncbackbone.domain.errors``::

    SyncBackboneError
    └── InvalidInput
        └── SnapshotUnusable    a snapshot that cannot be restored (corrupt, newer code, no upcaster)
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic

from .documents import Document, aggregate_id, split_aggregate_id
from .errors import InvalidInput
from .records import Position

STATE_FIELDS = tuple(f.name for f in dataclasses.fields(Document) if f.name != "version")
STATE_NAMES = {"id": "doc_id"}
"""Document fields kept under another name in the state (``id`` is the aggregate's key)."""
SNAPSHOT_IDS = uuid.UUID("6f1d2c1e-5b0a-4c53-9a57-0d4b1f0e7a11")
"""The uuid5 namespace that maps aggregate ids (``collection/id``) to snapshot originator ids."""


class SnapshotUnusable(InvalidInput):
    """A snapshot that cannot be restored; the state is rebuilt from events instead."""


def snapshot_id(agg_id: str) -> uuid.UUID:
    """The originator id of ``agg_id``'s snapshots (eventsourcing snapshots are keyed by UUID)."""
    return uuid.uuid5(SNAPSHOT_IDS, agg_id)


class DocumentState:
    """A document as eventsourcing snapshots it: ``vars()`` is the state, ``id``/``version`` the key.

    The state holds every field of ``Document`` but its version (``id`` is kept as ``doc_id``).
    A snapshot that lacks a field ``Document`` has now is unusable (the state is rebuilt from
    events) unless an upcaster fills it in: so adding a field to ``Document`` never restores a
    document with a silently defaulted field.
    """

    class_version: ClassVar[int] = 1

    def __init__(self, doc: Document) -> None:
        self._id = snapshot_id(aggregate_id(doc.collection, doc.id))
        self._version = doc.version
        for name in STATE_FIELDS:
            value = getattr(doc, name)
            setattr(self, STATE_NAMES.get(name, name), dict(value) if isinstance(value, dict) else value)

    @property
    def id(self) -> uuid.UUID:
        return self._id

    @property
    def version(self) -> int:
        return self._version

    def document(self) -> Document:
        """The Document this state holds (KeyError if the state lacks one of its fields)."""
        state = vars(self)
        values = {name: state[STATE_NAMES.get(name, name)] for name in STATE_FIELDS}
        return Document(version=self._version, **values)


STATE_TOPIC = get_topic(DocumentState)


class DocumentSnapshot(Snapshot):
    """eventsourcing's Snapshot of a ``DocumentState`` (originator id: ``snapshot_id(aggregate id)``)."""

    @classmethod
    def of(cls, doc: Document, state_cls: type[DocumentState] = DocumentState) -> DocumentSnapshot:
        """A snapshot of ``doc`` taken with ``state_cls`` (its ``class_version`` goes into the state; the
        topic is always ``DocumentState``'s, as the class keeps its name across versions)."""
        taken = cls.take(state_cls(doc))
        state = {k: v for k, v in taken.state.items() if not k.startswith("_")}
        return dataclasses.replace(taken, topic=STATE_TOPIC, state=state)


SNAPSHOT_TOPIC = get_topic(DocumentSnapshot)


def restore(snapshot: DocumentSnapshot, agg_id: str, state_cls: type[DocumentState] = DocumentState) -> Document:
    """The Document in ``snapshot`` of ``agg_id``, upcast to ``state_cls``; SnapshotUnusable if it cannot be."""
    fields = vars(snapshot)
    missing = [name for name in ("topic", "state", "originator_id", "originator_version") if name not in fields]
    if missing or not isinstance(snapshot.state, dict):
        raise SnapshotUnusable(f"it is not a snapshot: {', '.join(missing) or 'state'} missing or malformed")
    if snapshot.topic != STATE_TOPIC:
        raise SnapshotUnusable(f"it holds {snapshot.topic!r}, not a document state ({STATE_TOPIC})")
    if snapshot.originator_id != snapshot_id(agg_id):
        raise SnapshotUnusable(f"it belongs to another aggregate (originator id {snapshot.originator_id})")
    made_by = snapshot.state.get("class_version", 1)
    if not isinstance(made_by, int):
        raise SnapshotUnusable(f"its class_version {made_by!r} is not a number")
    if made_by > state_cls.class_version:
        raise SnapshotUnusable(
            f"it was taken by newer code (class_version {made_by}; this code reads up to {state_cls.class_version})"
        )
    try:
        restored: Any = dataclasses.replace(snapshot, topic=get_topic(state_cls)).mutate(None)
    except AttributeError as e:
        raise SnapshotUnusable(f"no upcaster from class_version {made_by}: {e}") from e
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotUnusable(f"its state cannot be upcast: {type(e).__name__}: {e}") from e
    try:
        doc: Document = restored.document()
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise SnapshotUnusable(f"its state does not fit {state_cls.__name__}: {type(e).__name__}: {e}") from e
    check_identity(doc, agg_id, snapshot.originator_version)
    return doc


def check_identity(doc: Document, agg_id: str, version: int) -> None:
    """Raise SnapshotUnusable unless ``doc`` is ``agg_id`` at ``version`` with a JSON object as data."""
    if (doc.collection, doc.id) != split_aggregate_id(agg_id):
        raise SnapshotUnusable(f"it holds document {doc.collection}/{doc.id}, not {agg_id}")
    if doc.version != version or version < 1:
        raise SnapshotUnusable(f"its version {doc.version} is not the recorded version {version}")
    if not isinstance(doc.data, dict):
        raise SnapshotUnusable(f"its data is a {type(doc.data).__name__}, not a JSON object")


@dataclass(frozen=True, slots=True)
class SnapshotPoint:
    """A document's state at ``document.version`` and the log position of that version's event."""

    document: Document
    position: Position
    taken_at_ms: int = 0

    @property
    def aggregate_id(self) -> str:
        return aggregate_id(self.document.collection, self.document.id)

    @property
    def version(self) -> int:
        return self.document.version
