"""Older versions of a document, for policies that merge against the version a change was made on.

Read from the event log on demand (only a stale change under a merging policy asks),
plus the events this processor decided in the current run but has not committed yet.
"""

from __future__ import annotations

from ..domain.documents import Document, apply, split_aggregate_id
from ..domain.mutations import BaseLoader
from ..domain.records import Position, StoredEvent
from .ports import Codec, EventLog, PartitionOutcome

UNCOMMITTED = Position(-1, -1)


def base_loader(log: EventLog, codec: Codec, aggregate_id: str, outcome: PartitionOutcome) -> BaseLoader:
    """A loader of ``aggregate_id`` at any version up to its current one."""

    def at(version: int) -> Document:
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
