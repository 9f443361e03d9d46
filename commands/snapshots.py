"""Bounded recovery: load aggregates from their latest snapshot plus the event tail, and take snapshots.

Loading an aggregate that has a snapshot at version n reads its events from n on: the
event at n must sit at the snapshot's log position (else the snapshot belongs to another
history, e.g. a recreated topic, and is ignored), the rest is the tail folded on top.
Loading therefore costs the events since the latest snapshot, not the aggregate's history.
A snapshot that cannot be used never stops a load: it is logged and the aggregate is
folded from its first event.

``Snapshots`` also decides when to snapshot: ``noted`` sees the accepted command results
and calls ``on_due`` with the aggregates K events past their last snapshot (K per
aggregate type, ``SnapshotPolicy``); ``take_dirty`` snapshots everything changed since.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..domain.documents import AGGREGATE_TYPE, Document, fold, split_aggregate_id
from ..domain.errors import SyncBackboneError
from ..domain.records import Position, StoredEvent
from ..domain.snapshots import SnapshotPoint
from .ports import Codec, EventLog, SnapshotLookup, SnapshotStore
from .results import CommandResult

log = logging.getLogger(__name__)
CHUNK = 500
DueListener = Callable[[list[str]], None]


@dataclass(frozen=True, slots=True)
class Recovered:
    """An aggregate's state as loaded, and what the load cost."""

    document: Document
    snapshot_version: int
    """Version of the snapshot it started from (0: folded from the first event)."""
    tip: Position | None
    """Log position of the event at ``document.version`` (None when it has no events)."""
    read: int
    """Events read from the log."""
    problem: str | None = None
    """Why a snapshot of this aggregate was ignored, if one was."""


class SnapshotPolicy:
    """How many events an aggregate may gain past its last snapshot before the next one (K per type)."""

    def __init__(self, every: int = 100, per_type: Mapping[str, int] | None = None) -> None:
        self._every, self._per_type = every, dict(per_type or {})

    def every(self, aggregate_type: str) -> int:
        """K for ``aggregate_type``."""
        return self._per_type.get(aggregate_type, self._every)


def empty(agg_id: str) -> Document:
    """The never-written document of ``agg_id``."""
    collection, doc_id = split_aggregate_id(agg_id)
    return Document(collection, doc_id)


class Snapshots:
    """Loads aggregates from snapshot + tail, takes snapshots, and says when they are due."""

    def __init__(
        self,
        log_: EventLog,
        codec: Codec,
        store: SnapshotStore | None,
        policy: SnapshotPolicy | None = None,
        on_due: DueListener | None = None,
    ) -> None:
        self._log, self._codec, self._store = log_, codec, store
        self._policy = policy or SnapshotPolicy()
        self.on_due = on_due
        self._lock = threading.Lock()
        self._base: dict[str, int] = {}  # aggregate -> version of its latest snapshot, as far as we know
        self._dirty: set[str] = set()

    def load(self, aggregate_ids: Collection[str], use_snapshots: bool = True) -> dict[str, Recovered]:
        """Each aggregate's current state; raises if an event cannot be decoded."""
        lookup = self.lookup(aggregate_ids) if use_snapshots else SnapshotLookup()
        loaded: dict[str, Recovered] = {}
        tails = self._log.read_aggregates_from({agg: p.version for agg, p in lookup.found.items()})
        for agg, point in lookup.found.items():
            found = self._from_snapshot(point, tails[agg])
            if isinstance(found, Recovered):
                loaded[agg] = found
            else:
                lookup.unusable[agg] = found
        rest = [agg for agg in aggregate_ids if agg not in loaded]
        for agg, stored in (self._log.read_aggregates(rest) if rest else {}).items():
            loaded[agg] = self.fold(empty(agg), stored, 0, lookup.unusable.get(agg))
        with self._lock:
            self._base.update({agg: r.snapshot_version for agg, r in loaded.items()})
        return loaded

    def lookup(self, aggregate_ids: Collection[str]) -> SnapshotLookup:
        """The store's snapshots of ``aggregate_ids``; none (logged) if there is no store or it fails."""
        if self._store is None or not aggregate_ids:
            return SnapshotLookup()
        try:
            lookup = self._store.load(aggregate_ids)
        except SyncBackboneError as e:
            log.warning("snapshots unavailable, loading from events: %s", e)
            return SnapshotLookup()
        for agg, reason in lookup.unusable.items():
            log.warning("snapshot of %s ignored, rebuilding from events: %s", agg, reason)
        return lookup

    def _from_snapshot(self, point: SnapshotPoint, stored: Sequence[StoredEvent]) -> Recovered | str:
        """The aggregate loaded from ``point`` and its events from the snapshot's version on, or why
        ``point`` does not fit the log."""
        head = stored[0] if stored else None
        if head is None or head.version != point.version or head.position != point.position:
            where = f"p{point.position.partition}@{point.position.offset}"
            found = f"at p{head.position.partition}@{head.position.offset}" if head else "not in the log"
            reason = f"its v{point.version} at {where} does not match the log (that event is {found})"
            log.warning("snapshot of %s ignored, rebuilding from events: %s", point.aggregate_id, reason)
            return reason
        recovered = self.fold(point.document, stored[1:], point.version)
        return Recovered(recovered.document, point.version, recovered.tip or head.position, len(stored))

    def fold(self, doc: Document, stored: Sequence[StoredEvent], base: int, problem: str | None = None) -> Recovered:
        """``doc`` after ``stored`` (decoded with the codec, so old event versions are upcast)."""
        doc = fold(doc, map(self._codec.decode_event, stored))
        tip = stored[-1].position if stored else None
        return Recovered(doc, base, tip, len(stored), problem)

    def take(self, aggregate_ids: Iterable[str]) -> int:
        """Snapshot each aggregate that has events past its latest usable snapshot; return how many were taken."""
        taken = 0
        ids = sorted(set(aggregate_ids))
        for start in range(0, len(ids), CHUNK):
            taken += self._take_chunk(ids[start : start + CHUNK])
        return taken

    def _take_chunk(self, ids: list[str]) -> int:
        try:
            loaded = self.load(ids)
        except SyncBackboneError:  # one aggregate's events cannot be read: find it, snapshot the others
            loaded = {}
            for agg in ids:
                try:
                    loaded.update(self.load([agg]))
                except SyncBackboneError as e:
                    log.warning("no snapshot of %s: its events cannot be folded: %s", agg, e)
        points = [
            SnapshotPoint(r.document, r.tip)
            for r in loaded.values()
            if r.tip is not None and r.document.version > r.snapshot_version
        ]
        if not points or self._store is None:
            return 0
        saved = self._store.save(points, [agg for agg, r in loaded.items() if r.problem])
        with self._lock:
            self._base.update({p.aggregate_id: p.version for p in points})
        return saved

    def noted(self, results: Sequence[CommandResult]) -> None:
        """Track accepted results; call ``on_due`` with the aggregates now K events past their snapshot."""
        due: list[str] = []
        k = self._policy.every(AGGREGATE_TYPE)
        with self._lock:
            for r in results:
                if r.status != "accepted" or not r.positions:
                    continue
                self._dirty.add(r.aggregate_id)
                if r.version - self._base.get(r.aggregate_id, 0) >= k:
                    self._base[r.aggregate_id] = r.version  # due now: do not ask again until K more
                    due.append(r.aggregate_id)
        if due and self.on_due is not None:
            self.on_due(due)

    def take_dirty(self) -> int:
        """Snapshot every aggregate changed since it was last snapshotted here."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        return self.take(dirty)
