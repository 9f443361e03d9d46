"""Last-writer-wins per field by hybrid logical clock, and CRDT-typed fields on top of it.

``LwwPolicy``: each field remembers the timestamp of its last write (``_sync.clocks``, kept
for removed fields too, as tombstones); an incoming write of a field wins if its clock is
later. A change without a clock (a service's command) gets the successor of the latest
clock in the document, so it wins. ``CrdtPolicy``: declared fields are CRDTs whose deltas
join into their state (``_sync.crdt``); the other fields are LWW.
"""

from __future__ import annotations

from collections.abc import Mapping

from .crdt import CrdtType, checked_delta, crdt_type
from .documents import JSON, Document, DocumentEvent
from .errors import CommandRejected, InvalidInput
from .hlc import Timestamp, latest
from .mutations import (
    SYNC_KEY,
    BaseLoader,
    Change,
    Outcome,
    delete_decision,
    events_of,
    guard,
    no_base,
    sync_meta,
    targets,
)
from .policies import ConflictPolicy

SERVER_NODE = "@server"


def clock_of(change: Change, clocks: Mapping[str, str]) -> Timestamp:
    """The change's timestamp, or the successor of the latest one in the document."""
    try:
        if change.clock is not None:
            return Timestamp.parse(change.clock)
        return latest(clocks.values()).successor(SERVER_NODE)
    except InvalidInput as e:
        raise CommandRejected(str(e)) from e


def settle_fields(change: Change, doc: Document, clocks: dict[str, str], outcome: Outcome, keep: set[str]) -> None:
    """Let each field the change writes win or lose by clock; winners update ``clocks``."""
    set_, unset = targets(change, doc, keep)
    clock = clock_of(change, clocks)
    for name in sorted(set_.keys() | set(unset)):
        current = Timestamp.parse(clocks[name]) if name in clocks else None
        outcome.ours[name] = doc.data.get(name)
        if current is not None and current >= clock:
            outcome.decisions[name] = f"ours: {current} is later"
            outcome.conflicted = True
            continue
        clocks[name] = str(clock)
        outcome.decisions[name] = "theirs"
        if name in set_:
            outcome.set[name] = set_[name]
        else:
            outcome.unset.append(name)


class LwwPolicy(ConflictPolicy):
    """Per field, the write with the latest hybrid logical clock wins."""

    name = "lww"
    resolves = True

    def check(self, doc: Document, expected_version: int | None) -> None:
        """Versions never block a write here: only clocks decide."""

    def decide(self, change: Change, doc: Document, base: BaseLoader = no_base) -> list[DocumentEvent]:
        if change.op == "delete":
            return delete_decision(change, doc)
        guard(change, doc)
        meta = sync_meta(doc)
        outcome = Outcome()
        self.settle(change, doc, meta, outcome)
        outcome.set[SYNC_KEY] = meta
        return events_of(self.name, change, doc, outcome)

    def settle(self, change: Change, doc: Document, meta: JSON, outcome: Outcome) -> None:
        if change.crdt:
            raise CommandRejected("CRDT deltas need a collection with the crdt policy")
        settle_fields(change, doc, meta["clocks"], outcome, set())


class CrdtPolicy(LwwPolicy):
    """Typed fields join CRDT deltas (counter, orset, register, custom:<name>); the rest is LWW."""

    name = "crdt"

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.types: dict[str, CrdtType] = {name: crdt_type(kind) for name, kind in fields.items()}

    def settle(self, change: Change, doc: Document, meta: JSON, outcome: Outcome) -> None:
        typed = (change.set.keys() | set(change.unset)) & self.types.keys()
        if typed:
            raise CommandRejected(f"fields {sorted(typed)} are CRDTs: change them with deltas, not set/unset")
        settle_fields(change, doc, meta["clocks"], outcome, set(self.types))
        states = meta["crdt"]
        for name, delta in sorted(change.crdt.items()):
            kind = self.types.get(name)
            if kind is None:
                raise CommandRejected(f"field {name!r} is not a CRDT field of this collection")
            state = kind.join(dict(states.get(name) or {}), checked_delta(kind.name, name, delta))
            states[name] = state
            outcome.ours[name] = doc.data.get(name)
            outcome.set[name] = kind.value(state)
            outcome.decisions[name] = "join"
