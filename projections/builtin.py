"""The built-in read models: ``documents`` (current state), ``changes`` (a feed per collection), ``audit``.

Each is its own projection with its own checkpoint, so each can be rebuilt alone.
The routing tables sit at the bottom, one handler per event type.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.documents import ConflictResolved, DocumentCreated, DocumentDeleted, DocumentPatched, DocumentReplaced
from .changes import Append, Change, MergeJson, Table, Upsert
from .projection import Fact, Handler, Projection, Registry, from_ms

DOCUMENTS_TABLE = Table(
    "documents",
    (
        ("collection", "text"),
        ("id", "text"),
        ("data", "jsonb"),
        ("version", "bigint"),
        ("updated_at", "timestamptz"),
        ("deleted", "boolean"),
    ),
    key=("collection", "id"),
    indexes=("USING gin (data jsonb_path_ops)",),
)

CHANGES_TABLE = Table(
    "changes",
    (
        ("collection", "text"),
        ("position", "bigint"),
        ("id", "text"),
        ("version", "bigint"),
        ("op", "text"),
        ("data", "jsonb"),
        ("unset", "text[]"),
        ("recorded_at", "timestamptz"),
        ("causation_id", "text"),
        ("actor", "text"),
    ),
    key=("collection", "position"),
    indexes=("(collection, id, version)",),
    sequence=("collection", "position"),
)

AUDIT_TABLE = Table(
    "audit",
    (
        ("aggregate_id", "text"),
        ("version", "bigint"),
        ("type", "text"),
        ("actor", "text"),
        ("causation_id", "text"),
        ("correlation_id", "text"),
        ("client_id", "text"),
        ("tenant", "text"),
        ("occurred_at", "timestamptz"),
        ("recorded_at", "timestamptz"),
        ("log_partition", "integer"),
        ("log_offset", "bigint"),
    ),
    key=("aggregate_id", "version"),
    indexes=("(causation_id)",),
)


def document_row(fact: Fact, data: dict[str, object], deleted: bool) -> dict[str, object]:
    collection, doc_id = fact.collection_and_id
    return {
        "collection": collection,
        "id": doc_id,
        "data": data,
        "version": fact.version,
        "updated_at": fact.recorded_at,
        "deleted": deleted,
    }


def document_created(fact: Fact) -> Sequence[Change]:
    data = dict(fact.event_as(DocumentCreated).data)
    return [Upsert("documents", document_row(fact, data, deleted=False))]


def document_replaced(fact: Fact) -> Sequence[Change]:
    data = dict(fact.event_as(DocumentReplaced).data)
    return [Upsert("documents", document_row(fact, data, deleted=False))]


def document_patched(fact: Fact) -> Sequence[Change]:
    event = fact.event_as(DocumentPatched)
    collection, doc_id = fact.collection_and_id
    row = {"collection": collection, "id": doc_id, "version": fact.version, "updated_at": fact.recorded_at}
    return [MergeJson("documents", row, "data", dict(event.set), tuple(event.unset))]


def document_deleted(fact: Fact) -> Sequence[Change]:
    return [Upsert("documents", document_row(fact, {}, deleted=True))]


def change_row(fact: Fact, op: str, data: dict[str, object], unset: Sequence[str] = ()) -> Change:
    collection, doc_id = fact.collection_and_id
    row = {
        "collection": collection,
        "id": doc_id,
        "version": fact.version,
        "op": op,
        "data": data,
        "unset": list(unset),
        "recorded_at": fact.recorded_at,
        "causation_id": fact.meta.causation_id,
        "actor": fact.meta.actor,
    }
    return Append("changes", row)


def change_created(fact: Fact) -> Sequence[Change]:
    return [change_row(fact, "created", dict(fact.event_as(DocumentCreated).data))]


def change_replaced(fact: Fact) -> Sequence[Change]:
    return [change_row(fact, "replaced", dict(fact.event_as(DocumentReplaced).data))]


def change_patched(fact: Fact) -> Sequence[Change]:
    event = fact.event_as(DocumentPatched)
    return [change_row(fact, "patched", dict(event.set), event.unset)]


def change_deleted(fact: Fact) -> Sequence[Change]:
    return [change_row(fact, "deleted", {})]


def audited(fact: Fact) -> Sequence[Change]:
    """Who did what and through which command; reads only the envelope, so erased payloads are audited too."""
    meta, position = fact.meta, fact.stored.position
    row = {
        "aggregate_id": fact.aggregate_id,
        "version": fact.version,
        "type": fact.stored.event.type,
        "actor": meta.actor,
        "causation_id": meta.causation_id,
        "correlation_id": meta.correlation_id,
        "client_id": meta.client_id,
        "tenant": meta.tenant,
        "occurred_at": from_ms(meta.occurred_at_ms) if meta.occurred_at_ms else fact.recorded_at,
        "recorded_at": fact.recorded_at,
        "log_partition": position.partition,
        "log_offset": position.offset,
    }
    return [Append("audit", row)]


DOCUMENT_HANDLERS: dict[str, Handler] = {
    DocumentCreated.type: document_created,
    DocumentReplaced.type: document_replaced,
    DocumentPatched.type: document_patched,
    DocumentDeleted.type: document_deleted,
    ConflictResolved.type: document_patched,  # a resolution applies as a patch
}
CHANGE_HANDLERS: dict[str, Handler] = {
    DocumentCreated.type: change_created,
    DocumentReplaced.type: change_replaced,
    DocumentPatched.type: change_patched,
    DocumentDeleted.type: change_deleted,
    ConflictResolved.type: change_patched,
}
AUDIT_HANDLERS: dict[str, Handler] = {event_type: audited for event_type in DOCUMENT_HANDLERS}

DOCUMENTS = Projection("documents", (DOCUMENTS_TABLE,), DOCUMENT_HANDLERS)
CHANGES = Projection("changes", (CHANGES_TABLE,), CHANGE_HANDLERS)
AUDIT = Projection("audit", (AUDIT_TABLE,), AUDIT_HANDLERS)
BUILTIN = Registry([DOCUMENTS, CHANGES, AUDIT])
