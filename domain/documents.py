"""The Document aggregate: a JSON object identified by collection and id.

State is folded from events with ``apply``; the decision functions return the
events a command produces, or raise ``CommandRejected`` (also for a change of the
reserved ``_sync`` field). Replaying history and handling a command run the same ``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from .errors import CommandRejected, InvalidInput
from .values import refuse_reserved

JSON = dict[str, Any]
AGGREGATE_TYPE = "document"


def aggregate_id(collection: str, doc_id: str) -> str:
    """The aggregate id (and Kafka key) of a document: ``collection/id``."""
    return f"{collection}/{doc_id}"


def split_aggregate_id(agg_id: str) -> tuple[str, str]:
    """The (collection, id) pair of a document aggregate id."""
    collection, sep, doc_id = agg_id.partition("/")
    if not sep or not collection or not doc_id:
        raise InvalidInput(f"aggregate id {agg_id!r} is not of the form 'collection/id'")
    return collection, doc_id


@dataclass(frozen=True, slots=True)
class DocumentCreated:
    """A document came into existence with ``data``."""

    data: JSON
    type: ClassVar[str] = "DocumentCreated"


@dataclass(frozen=True, slots=True)
class DocumentReplaced:
    """A document's whole content was replaced by ``data``."""

    data: JSON
    type: ClassVar[str] = "DocumentReplaced"


@dataclass(frozen=True, slots=True)
class DocumentPatched:
    """Fields were set (``set``) and removed (``unset``)."""

    set: JSON
    unset: tuple[str, ...] = ()
    type: ClassVar[str] = "DocumentPatched"


@dataclass(frozen=True, slots=True)
class DocumentDeleted:
    """A document was deleted (a tombstone; it may be created again)."""

    type: ClassVar[str] = "DocumentDeleted"


@dataclass(frozen=True, slots=True)
class ConflictResolved(DocumentPatched):
    """A change made against a stale version was resolved by the collection's ``policy``.

    It applies as a patch (``set``/``unset`` are the outcome); ``theirs`` is the incoming
    change, ``ours`` the server's values of the fields it touched, ``decisions`` how each
    field was settled: both sides stay in the log for the audit trail.
    """

    policy: str = ""
    base_version: int = 0
    theirs: JSON = field(default_factory=dict)
    ours: JSON = field(default_factory=dict)
    decisions: JSON = field(default_factory=dict)
    type: ClassVar[str] = "ConflictResolved"


DocumentEvent = DocumentCreated | DocumentReplaced | DocumentPatched | DocumentDeleted | ConflictResolved
EVENT_TYPES: dict[str, type[DocumentEvent]] = {
    cls.type: cls for cls in (DocumentCreated, DocumentReplaced, DocumentPatched, DocumentDeleted, ConflictResolved)
}


@dataclass(frozen=True, slots=True)
class Document:
    """The folded state of one document at ``version`` (0 = never written)."""

    collection: str
    id: str
    version: int = 0
    data: JSON = field(default_factory=dict)
    deleted: bool = False

    @property
    def exists(self) -> bool:
        return self.version > 0 and not self.deleted


def apply(doc: Document, event: DocumentEvent) -> Document:
    """The document after ``event``: one version later."""
    version = doc.version + 1
    if isinstance(event, DocumentCreated | DocumentReplaced):
        return replace(doc, version=version, data=dict(event.data), deleted=False)
    if isinstance(event, DocumentPatched):
        data = {k: v for k, v in doc.data.items() if k not in event.unset}
        data.update(event.set)
        return replace(doc, version=version, data=data)
    return replace(doc, version=version, data={}, deleted=True)


def fold(doc: Document, events: Iterable[DocumentEvent]) -> Document:
    """The document after all ``events`` in order."""
    for event in events:
        doc = apply(doc, event)
    return doc


def create(doc: Document, data: Mapping[str, Any]) -> list[DocumentEvent]:
    """Create a document that does not exist (or was deleted)."""
    refuse_reserved(data)
    if doc.exists:
        raise CommandRejected(f"document {doc.collection}/{doc.id} already exists")
    return [DocumentCreated(dict(data))]


def put(doc: Document, data: Mapping[str, Any]) -> list[DocumentEvent]:
    """Replace a document's content, creating it when missing."""
    refuse_reserved(data)
    if doc.exists:
        return [DocumentReplaced(dict(data))]
    return [DocumentCreated(dict(data))]


def patch(doc: Document, set_: Mapping[str, Any], unset: Iterable[str]) -> list[DocumentEvent]:
    """Set and remove fields of an existing document."""
    refuse_reserved([*set_, *unset])
    if not doc.exists:
        raise CommandRejected(f"document {doc.collection}/{doc.id} does not exist")
    return [DocumentPatched(dict(set_), tuple(unset))]


def delete(doc: Document) -> list[DocumentEvent]:
    """Delete an existing document."""
    if not doc.exists:
        raise CommandRejected(f"document {doc.collection}/{doc.id} does not exist")
    return [DocumentDeleted()]
