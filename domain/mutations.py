"""A ``Change``: what a command asks of a document, as the conflict policies see it.

Every command (and every mutation pushed by an offline client) becomes a Change: an
operation, the fields it sets and removes, the version it was made against, its hybrid
logical clock, its client and a unique tag, and CRDT deltas for typed fields. Policies
turn a Change into events; the helpers here are the parts they share.

Policy metadata lives in the document under the reserved key ``_sync``:
``{"clocks": {field: timestamp}, "crdt": {field: state}}``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import documents
from .documents import (
    JSON,
    ConflictResolved,
    Document,
    DocumentCreated,
    DocumentDeleted,
    DocumentEvent,
    DocumentPatched,
)
from .errors import CommandRejected, VersionConflict
from .values import RESERVED_KEY, refuse_reserved

SYNC_KEY = RESERVED_KEY
Op = Literal["create", "put", "patch", "delete"]
BaseLoader = Callable[[int], Document]
"""The document as it was at a given version (for three-way merges)."""


def no_base(version: int) -> Document:
    raise CommandRejected(f"the document at version {version} is not available to merge against")


@dataclass(frozen=True, slots=True)
class Change:
    """One requested change of one document."""

    op: Op
    set: JSON = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    base_version: int | None = None
    clock: str | None = None
    client: str | None = None
    tag: str = ""
    crdt: JSON = field(default_factory=dict)

    def theirs(self) -> JSON:
        """The change as recorded in a ConflictResolved event."""
        record: JSON = {"op": self.op, "set": self.set, "unset": list(self.unset)}
        extras = {"clock": self.clock, "client": self.client, "crdt": self.crdt or None}
        return record | {k: v for k, v in extras.items() if v is not None}


def plain(change: Change, doc: Document) -> list[DocumentEvent]:
    """The events of ``change`` applied as it is, with no conflict resolution."""
    if change.crdt:
        raise CommandRejected("CRDT deltas need a collection with the crdt policy")
    if change.op == "create":
        return documents.create(doc, change.set)
    if change.op == "put":
        return documents.put(doc, change.set)
    if change.op == "patch":
        return documents.patch(doc, change.set, change.unset)
    return documents.delete(doc)


def user_data(data: Mapping[str, Any]) -> JSON:
    """A document's fields without the policy metadata."""
    return {k: v for k, v in data.items() if k != SYNC_KEY}


def sync_meta(doc: Document) -> JSON:
    """A private copy of the document's policy metadata, with both sections present."""
    meta = copy.deepcopy(doc.data.get(SYNC_KEY) or {}) if doc.exists else {}
    meta.setdefault("clocks", {})
    meta.setdefault("crdt", {})
    return dict(meta)


def targets(change: Change, doc: Document, keep: Iterable[str] = ()) -> tuple[JSON, list[str]]:
    """The fields ``change`` sets and removes; a put removes the fields it leaves out (but ``keep``)."""
    if change.op != "put":
        return dict(change.set), list(change.unset)
    kept = set(keep) | set(change.set)
    gone = [f for f in user_data(doc.data) if f not in kept] if doc.exists else []
    return dict(change.set), gone


def guard(change: Change, doc: Document) -> None:
    """Refuse what no policy can resolve: reserved fields, a base from the future, a lost document."""
    refuse_reserved([*change.set, *change.unset, *change.crdt])
    if change.base_version is not None and change.base_version > doc.version:
        raise VersionConflict(change.base_version, doc.version)
    if change.op == "create" and doc.exists:
        raise CommandRejected(f"document {doc.collection}/{doc.id} already exists")
    if change.op == "patch" and doc.deleted:
        raise CommandRejected(f"document {doc.collection}/{doc.id} was deleted")


def is_stale(change: Change, doc: Document) -> bool:
    """Whether the document moved on since the version the change was made against."""
    return change.base_version is not None and change.base_version < doc.version


def delete_decision(change: Change, doc: Document) -> list[DocumentEvent]:
    """Delete only what the client saw: a delete made against a stale version is rejected (edits win)."""
    if not doc.exists:
        raise CommandRejected(f"document {doc.collection}/{doc.id} does not exist")
    if change.base_version is not None and change.base_version != doc.version:
        raise VersionConflict(change.base_version, doc.version)
    return [DocumentDeleted()]


@dataclass(slots=True)
class Outcome:
    """What a policy settled: fields to set and remove, how each was decided, the server's side."""

    set: JSON = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    decisions: JSON = field(default_factory=dict)
    ours: JSON = field(default_factory=dict)
    conflicted: bool = False


def events_of(policy: str, change: Change, doc: Document, outcome: Outcome) -> list[DocumentEvent]:
    """The event that records ``outcome``: a creation, a patch, or a ConflictResolved when it was contested."""
    if not doc.exists:
        return [DocumentCreated(dict(outcome.set))]
    unset = tuple(f for f in outcome.unset if f in doc.data)
    if outcome.conflicted or is_stale(change, doc):
        base = change.base_version if change.base_version is not None else doc.version
        theirs, ours, decisions = change.theirs(), dict(outcome.ours), dict(outcome.decisions)
        return [ConflictResolved(dict(outcome.set), unset, policy, base, theirs, ours, decisions)]
    return [DocumentPatched(dict(outcome.set), unset)]
