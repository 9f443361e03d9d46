"""Applying one batch of a partition: validate in log order, handle, park, isolate poison.

``plan`` is pure: it walks events in log order and keeps, per aggregate, the last
version handled. The first record of an ``(aggregate, version)`` wins; a later
duplicate is skipped. An event whose handler fails, or that does not follow its
aggregate's last version, becomes a dead letter, and later events of that aggregate
are parked behind it (dead letters too, in order) while other aggregates flow.
``apply_batch`` writes a plan in one session; if the store refuses the data, it
splits the batch in halves until the refused event is alone, and dead-letters it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain.records import StoredEvent
from .changes import Change
from .errors import ChangeRejected
from .ports import DeadEvent, ReadModelSession
from .projection import Decoder, Fact, Projection


@dataclass(slots=True)
class Tracker:
    """Per aggregate of a batch: the last version handled, and whether it is parked."""

    seen: dict[str, int]
    parked: set[str]
    touched: set[str] = field(default_factory=set)

    def copy(self) -> Tracker:
        return Tracker(dict(self.seen), set(self.parked), set(self.touched))

    def handled(self, aggregate_id: str, version: int) -> None:
        self.seen[aggregate_id] = version
        self.touched.add(aggregate_id)

    def changed(self) -> dict[str, int]:
        """The last handled version of every aggregate this batch handled."""
        return {a: self.seen[a] for a in self.touched}


@dataclass(slots=True)
class Plan:
    """What a run of events does: the changes to write and the dead letters to keep."""

    changes: list[Change] = field(default_factory=list)
    dead: list[DeadEvent] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0


def dead_event(stored: StoredEvent, error: BaseException | str, parked: bool = False) -> DeadEvent:
    """A dead letter for ``stored`` with the reason."""
    error_type = type(error).__name__ if isinstance(error, BaseException) else "Parked"
    e = stored.event
    p = stored.position
    return DeadEvent(p.partition, p.offset, e.aggregate_id, e.version, e.type, error_type, str(error), parked)


def plan(projection: Projection, events: Sequence[StoredEvent], tracker: Tracker, decoder: Decoder) -> Plan:
    """Validate ``events`` in log order against ``tracker`` (updating it) and collect their changes."""
    out = Plan()
    for stored in events:
        agg, version = stored.aggregate_id, stored.version
        last = tracker.seen.get(agg, 0)
        if version <= last:
            out.skipped += 1  # a later record of a version already handled: the first one won
            continue
        tracker.handled(agg, version)
        if agg in tracker.parked:
            out.dead.append(dead_event(stored, f"parked behind an earlier dead letter of {agg}", parked=True))
        elif version != last + 1:
            park(tracker, out, stored, f"version gap: {agg} v{version} follows v{last}")
        else:
            handle(projection, stored, decoder, tracker, out)
    return out


def handle(projection: Projection, stored: StoredEvent, decoder: Decoder, tracker: Tracker, out: Plan) -> None:
    """Add the changes of one in-order event, or dead-letter it if its handler fails."""
    try:
        changes = projection.handle(Fact(stored, decoder))
    except Exception as e:  # noqa: BLE001 - any handler failure is this event's poison, not the batch's
        park(tracker, out, stored, e)
        return
    out.changes.extend(changes)
    out.applied += 1


def park(tracker: Tracker, out: Plan, stored: StoredEvent, error: BaseException | str) -> None:
    """Dead-letter ``stored`` and park its aggregate."""
    reason = error if isinstance(error, BaseException) else ValueError(error)
    out.dead.append(dead_event(stored, reason))
    tracker.parked.add(stored.aggregate_id)


def apply_batch(
    session: ReadModelSession, projection: Projection, events: Sequence[StoredEvent], decoder: Decoder
) -> Plan:
    """Apply ``events`` of one partition in ``session`` (dead letters and versions included); return the totals."""
    aggregates = {e.aggregate_id for e in events}
    tracker = Tracker(session.seen(aggregates), session.parked(aggregates))
    total = Plan()
    apply_isolating(session, projection, events, decoder, tracker, total)
    session.record(tracker.changed(), total.dead)
    return total


def apply_isolating(
    session: ReadModelSession,
    projection: Projection,
    events: Sequence[StoredEvent],
    decoder: Decoder,
    tracker: Tracker,
    total: Plan,
) -> None:
    """Apply ``events``; if the store refuses them, bisect until the refused event is alone."""
    before = tracker.copy()
    step = plan(projection, events, tracker, decoder)
    try:
        session.apply(step.changes)
    except ChangeRejected as e:
        tracker.seen, tracker.parked, tracker.touched = before.seen, before.parked, before.touched
        if len(events) == 1:
            tracker.handled(events[0].aggregate_id, events[0].version)
            park(tracker, total, events[0], e)
            return
        half = len(events) // 2
        apply_isolating(session, projection, events[:half], decoder, tracker, total)
        apply_isolating(session, projection, events[half:], decoder, tracker, total)
        return
    total.dead.extend(step.dead)
    total.applied += step.applied
    total.skipped += step.skipped
