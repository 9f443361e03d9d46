"""Older versions of a document, for policies that merge against the version a change was made on.

Read from the event log on demand (only a stale change under a merging policy asks),
plus the events this processor decided in the current run but has not committed yet. A
version once loaded is kept for the rest of the run (``Bases``): many clients' edits of a
hot document made on the same version are merged against one read of it.
"""

from __future__ import annotations

from ..domain.documents import Document, apply, split_aggregate_id
from ..domain.mutations import BaseLoader
from ..domain.records import Position, StoredEvent
from .ports import Codec, EventLog, PartitionOutcome

UNCOMMITTED = Position(-1, -1)
Bases = dict[tuple[str, int], Document]
"""Versions of documents loaded in one run, by (aggregate id, version): a version never changes within it."""


def base_loader(
    log: EventLog, codec: Codec, aggregate_id: str, outcome: PartitionOutcome, bases: Bases | None = None
) -> BaseLoader:
    """A loader of ``aggregate_id`` at any version up to its current one (kept in ``bases`` once loaded)."""

    def at(version: int) -> Document:
        if bases is None:
            return read(version)
        if (aggregate_id, version) not in bases:
            bases[aggregate_id, version] = read(version)
        return bases[aggregate_id, version]

    def read(version: int) -> Document:
        collection, doc_id = split_aggregate_id(aggregate_id)
        doc = Document(collection, doc_id)
        if version <= 0:
            return doc
        stored = log.read_aggregate(aggregate_id, 1, version)
        pending = [e for _, agg, events in outcome.accepted if agg == aggregate_id for e in events]
        stored += [StoredEvent(e, UNCOMMITTED) for e in pending if e.version <= version]
        for event in stored:
            if event.version == doc.version + 1:
                doc = apply(doc, codec.decode_event(event))
        return doc

    return at
