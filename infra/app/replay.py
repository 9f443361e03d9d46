"""The replay service: any aggregate's state and history at any point, the audit trail, and rebuilds (G6).

``ReplayService.replay`` folds an aggregate's events from the first (to a version, or to a
time: the events recorded at or before it) and returns the state with the history that
led there; it also checks the aggregate's snapshot against the replay. Bad input is
named, never a traceback: an unknown aggregate or a time before the first event raises
``NotFound``; an event that cannot be read (its schema is missing, its key erased) and an
unusable snapshot become ``problems`` while the rest of the replay goes on.
``events`` walks the whole log (or one aggregate) for the audit export; ``rebuild`` and
``verify`` are the projections' own (``projections/maintenance.py``), fed by a full replay.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...commands.ports import Codec, EventLog, SnapshotLookup
from ...commands.snapshots import Snapshots
from ...domain.documents import Document, DocumentEvent, apply, split_aggregate_id
from ...domain.errors import InvalidInput, SyncBackboneError
from ...domain.records import StoredEvent
from ...domain.snapshots import SnapshotPoint
from ...projections.errors import NotFound
from ...projections.maintenance import ProgressFactory
from ..common.progress import Progress

if TYPE_CHECKING:
    from .backbone import Backbone

BATCH = 5000
CHUNK_AGGREGATES = 500


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC time."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time (a time without an offset is local time), or InvalidInput naming ``what``."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not an ISO 8601 time, e.g. 2024-05-01T10:00:00Z") from None
    return value if value.tzinfo else value.astimezone()


def ms_of(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def progress_line(label: str, total: int) -> Progress:
    return Progress(label, total, unit="events")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event as the audit trail shows it: who changed what, through which command, and when."""

    stored: StoredEvent
    change: dict[str, Any] | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        e, meta = self.stored.event, self.stored.event.meta
        return {
            "aggregate_id": e.aggregate_id,
            "version": e.version,
            "type": e.type,
            "schema_version": meta.schema_version,
            "recorded_at": iso(self.stored.recorded_at_ms),
            "occurred_at": iso(meta.occurred_at_ms),
            "actor": meta.actor,
            "command_id": meta.causation_id,
            "correlation_id": meta.correlation_id,
            "client_id": meta.client_id,
            "tenant": meta.tenant,
            "partition": self.stored.position.partition,
            "offset": self.stored.position.offset,
            "change": self.change,
            "error": self.error,
        }


def entry_of(stored: StoredEvent, codec: Codec) -> tuple[HistoryEntry, DocumentEvent | None]:
    """The history entry of ``stored`` and its domain event (None, with the error, if it cannot be read)."""
    try:
        event = codec.decode_event(stored)
    except SyncBackboneError as e:
        return HistoryEntry(stored, None, str(e)), None
    return HistoryEntry(stored, asdict(event)), event


@dataclass(slots=True)
class Replay:
    """An aggregate's state at a point, the history up to it, and anything that went wrong on the way."""

    aggregate_id: str
    state: Document
    history: list[HistoryEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    snapshot: str | None = None
    """What the aggregate's snapshot says about this replay (None: no snapshot)."""

    def as_dict(self) -> dict[str, Any]:
        s = self.state
        state = {"version": s.version, "exists": s.exists, "deleted": s.deleted, "data": s.data}
        last = self.history[-1].stored.recorded_at_ms if self.history else 0
        return {
            "aggregate_id": self.aggregate_id,
            "as_of": iso(last),
            "state": state,
            "history": [h.as_dict() for h in self.history],
            "snapshot": self.snapshot,
            "problems": self.problems,
        }


class ReplayService:
    """Replays the log of one backbone: per aggregate, for audit, and into projection rebuilds."""

    def __init__(self, log: EventLog, codec: Codec, snapshots: Snapshots, backbone: Backbone | None = None) -> None:
        self.log, self.codec, self.snapshots, self._backbone = log, codec, snapshots, backbone

    @classmethod
    def of(cls, backbone: Backbone) -> ReplayService:
        """The replay service of ``backbone`` (its log, codec and snapshot store)."""
        return cls(backbone.log, backbone.codec, backbone.snapshots(), backbone)

    def replay(self, aggregate_id: str, as_of: datetime | None = None, to_version: int | None = None) -> Replay:
        """The state of ``aggregate_id`` at ``as_of`` or ``to_version`` (default: now) and its history."""
        split_aggregate_id(aggregate_id)
        if as_of is not None and to_version is not None:
            raise InvalidInput("give a time (as_of) or a version (to_version), not both")
        if to_version is not None and to_version < 1:
            raise InvalidInput(f"to_version must be 1 or more, not {to_version}")
        stored = self.log.read_aggregate(aggregate_id, 1, to_version)
        if not stored:
            raise NotFound(f"no events for aggregate {aggregate_id!r}: nothing was ever written to it")
        if to_version is not None and stored[-1].version < to_version:
            raise InvalidInput(f"{aggregate_id} has {stored[-1].version} versions; there is no version {to_version}")
        if as_of is not None:
            stored = until(aggregate_id, stored, as_of)
        lookup = self.snapshots.lookup([aggregate_id])
        return self._fold(aggregate_id, stored, lookup)

    def _fold(self, aggregate_id: str, stored: Sequence[StoredEvent], lookup: SnapshotLookup) -> Replay:
        collection, doc_id = split_aggregate_id(aggregate_id)
        result = Replay(aggregate_id, Document(collection, doc_id))
        point = lookup.found.get(aggregate_id)
        if aggregate_id in lookup.unusable:
            result.snapshot = "unusable"
            result.problems.append(f"{lookup.unusable[aggregate_id]}; ignored, the state is replayed from events")
        for s in stored:
            entry, event = entry_of(s, self.codec)
            result.history.append(entry)
            if event is None:
                result.problems.append(f"{entry.error}; skipped, the state after it may be incomplete")
                result.state = replace(result.state, version=s.version)
            else:
                result.state = apply(result.state, event)
            if point is not None and s.version == point.version:
                check_snapshot(result, point, s)
        if point is not None and result.snapshot is None:
            result.snapshot = f"v{point.version}, after this point"
        return result

    def state(self, aggregate_id: str, from_snapshots: bool = False) -> Document:
        """The current state, replayed from the first event or from the latest snapshot and its tail."""
        return self.snapshots.load([aggregate_id], use_snapshots=from_snapshots)[aggregate_id].document

    def aggregates(self, progress: ProgressFactory = progress_line) -> dict[str, int]:
        """Every aggregate in the log with its latest version (one pass over every partition)."""
        versions: dict[str, int] = {}
        for stored in self._scan(progress, "scan"):
            versions[stored.aggregate_id] = stored.version
        return versions

    def events(
        self,
        since: datetime | None = None,
        until_: datetime | None = None,
        aggregate_id: str | None = None,
        progress: ProgressFactory = progress_line,
    ) -> Iterator[HistoryEntry]:
        """The audit trail: every event (of ``aggregate_id``) recorded in [since, until], in log order."""
        low = ms_of(since) if since else None
        high = ms_of(until_) if until_ else None
        for stored in self._scan(progress, "audit export", aggregate_id):
            at = stored.recorded_at_ms
            if (low is None or at >= low) and (high is None or at <= high):
                yield entry_of(stored, self.codec)[0]

    def _scan(self, progress: ProgressFactory, label: str, aggregate_id: str | None = None) -> Iterator[StoredEvent]:
        if aggregate_id is not None:
            stored = self.log.read_aggregate(aggregate_id)
            if not stored:
                raise NotFound(f"no events for aggregate {aggregate_id!r}: nothing was ever written to it")
            sink = progress(label, len(stored))
            for s in stored:
                yield s
                sink.advance()
            sink.done()
            return
        ends = {p: self.log.end_offset(p) for p in range(self.log.partitions)}
        sink = progress(label, sum(ends.values()))
        for partition, end in ends.items():
            offset = 0
            while offset < end and (batch := self.log.read_partition(partition, offset, BATCH)):
                yield from (s for s in batch if s.position.offset < end)
                sink.advance(min(batch[-1].position.offset + 1, end) - offset)
                offset = batch[-1].position.offset + 1
        sink.done()

    def verify_snapshots(self, aggregate_ids: Sequence[str]) -> list[str]:
        """Compare the replay from snapshots with the replay from zero; one line per aggregate that differs."""
        drift = []
        for agg in aggregate_ids:
            try:
                from_zero, from_snapshot = self.state(agg), self.state(agg, from_snapshots=True)
            except SyncBackboneError as e:
                drift.append(f"{agg}: cannot be replayed: {e}")
                continue
            if from_zero != from_snapshot:
                drift.append(f"{agg}: from snapshot v{from_snapshot.version} != from events v{from_zero.version}")
        return drift

    def rebuild(self, projection: str, progress: ProgressFactory = progress_line) -> int:
        """Rebuild a projection from a replay of the whole log (the projections' rebuild); events read."""

        if self._backbone is None:
            raise InvalidInput("rebuild needs the replay service of a backbone: ReplayService.of(backbone)")
        side = self._backbone.read_side()
        try:
            return side.rebuild(projection, progress)
        finally:
            side.close()


def until(aggregate_id: str, stored: Sequence[StoredEvent], as_of: datetime) -> list[StoredEvent]:
    """The prefix of ``stored`` recorded at or before ``as_of``; NotFound if that is nothing."""
    cut = ms_of(as_of)
    prefix = []
    for s in stored:
        if s.recorded_at_ms > cut:
            break
        prefix.append(s)
    if not prefix:
        first = stored[0]
        raise NotFound(
            f"{aggregate_id} did not exist yet at {iso(cut)}: its first event (v{first.version}) "
            f"was recorded at {iso(first.recorded_at_ms)}"
        )
    return prefix


def check_snapshot(result: Replay, point: SnapshotPoint, at: StoredEvent) -> None:
    """Compare the replayed state at the snapshot's version with the snapshot (G6 drift check)."""
    if point.document == result.state and point.position == at.position:
        result.snapshot = f"v{point.version} matches the replay"
        return
    result.snapshot = f"v{point.version} differs from the replay"
    result.problems.append(
        f"snapshot of {result.aggregate_id} at v{point.version} differs from the replay of its events "
        f"({'its log position' if point.document == result.state else 'its state'}); the replay is what the log says"
    )
