"""The local replica's logic, without I/O: pulled changes onto documents, pending mutations on top.

The client keeps the server's state of each document as last seen; what it shows is that
state with the pending mutations replayed on it by the collection's own conflict policy
(the same code the server runs), so rebasing onto newly pulled changes is a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..domain.crdt import counter_delta, orset_add_delta, orset_remove_delta
from ..domain.documents import Document, fold
from ..domain.errors import DomainError, InvalidInput
from ..domain.hlc import Timestamp
from ..domain.mutations import SYNC_KEY, Change, sync_meta, user_data
from ..domain.policies import ConflictPolicy


def from_state(collection: str, doc_id: str, state: Mapping[str, Any]) -> Document:
    """A document from the ``state`` of a push result."""
    return Document(collection, doc_id, int(state["version"]), dict(state["data"]), bool(state["deleted"]))


def apply_change(doc: Document, change: Mapping[str, Any]) -> Document:
    """``doc`` after a pulled change (unchanged if the change is not newer)."""
    version = int(change["version"])
    if version <= doc.version:
        return doc
    op, data = change["op"], dict(change.get("data") or {})
    if op in ("created", "replaced"):
        return replace(doc, version=version, data=data, deleted=False)
    if op == "deleted":
        return replace(doc, version=version, data={}, deleted=True)
    gone = set(change.get("unset") or ())
    merged = {k: v for k, v in doc.data.items() if k not in gone} | data
    return replace(doc, version=version, data=merged, deleted=False)


def change_of(mutation: Mapping[str, Any], client: str, base_version: int | None = None) -> Change:
    """The domain change of an outbox mutation."""
    return Change(
        mutation["op"],
        dict(mutation.get("data") or {}),
        tuple(mutation.get("unset") or ()),
        base_version,
        mutation.get("clock"),
        client,
        f"{client}:{mutation['seq']}",
        dict(mutation.get("crdt") or {}),
    )


def local_view(doc: Document, pending: Iterable[Mapping[str, Any]], policy: ConflictPolicy, client: str) -> Document:
    """The server's ``doc`` with the pending mutations replayed on it (those that no longer apply are skipped)."""
    for mutation in pending:
        try:
            doc = fold(doc, policy.decide(change_of(mutation, client, doc.version), doc))
        except DomainError:
            continue
    return doc


def acknowledged(
    doc: Document, mutation: Mapping[str, Any], policy: ConflictPolicy, client: str, version: int
) -> Document | None:
    """``doc`` with the client's own ``mutation`` folded in, which the server applied at ``version``, when that
    is the version right after ``doc``'s: the server decided it on this very state, as the same policy does
    here. None otherwise (someone else's change came between: the change feed brings the server's state)."""
    if version != doc.version + 1:
        return None
    try:
        after = fold(doc, policy.decide(change_of(mutation, client, doc.version), doc))
    except DomainError:
        return None
    return replace(after, version=version) if after.version != doc.version else None


def latest_clock(data: Mapping[str, Any]) -> Timestamp | None:
    """The latest hybrid logical timestamp recorded in a document, to keep the client's clock past it.

    Metadata that is not what the policies write (``{"_sync": 1}``, a junk clock) is ignored:
    a document that a client cannot read its clocks from must not stop it from syncing.
    """
    meta = data.get(SYNC_KEY)
    if not isinstance(meta, dict):
        return None
    clocks, crdt = meta.get("clocks"), meta.get("crdt")
    stamps = list(clocks.values()) if isinstance(clocks, dict) else []
    stamps += [s.get("c") for s in crdt.values() if isinstance(s, dict)] if isinstance(crdt, dict) else []
    return max((t for t in map(timestamp_or_none, stamps) if t is not None), default=None)


def timestamp_or_none(text: Any) -> Timestamp | None:
    """``text`` as a timestamp, or None if it is not one."""
    try:
        return Timestamp.parse(text)
    except InvalidInput:
        return None


def crdt_delta(view: Document, field: str, kind: str, client: str, tag: str, **op: Any) -> dict[str, Any]:
    """The delta of an operation on a CRDT field, from what the client sees of it."""
    state = dict(sync_meta(view)["crdt"].get(field) or {})
    if kind == "counter":
        return counter_delta(state, client, int(op["amount"]))
    if "add" in op:
        return orset_add_delta(op["add"], tag)
    return orset_remove_delta(state, op["remove"])


def visible(doc: Document) -> dict[str, Any] | None:
    """What an application sees of a document: its fields, or None when it does not exist."""
    return user_data(doc.data) if doc.exists else None
