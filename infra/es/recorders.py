"""eventsourcing recorders over our event logs.

``EventLogAggregateRecorder`` wraps any ``EventLog`` (the Kafka log too). The log keeps
each aggregate's versions gapless from 1, while eventsourcing only asks that an
aggregate's versions increase (they may start at 0, snapshots skip versions); so the
recorder appends at the log's next version and keeps the eventsourcing version in the
event id (``<originator id>@<originator version>``). Events that other writers appended
read back with their log version.

Over the embedded log, which has a total order (``notification_id``), the application,
tracking and process recorders complete a persistence module (see ``es_factory``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from ...commands.ports import EventLog
from ...domain.errors import ConcurrencyConflict
from ...domain.records import EventMeta, NewEvent
from ...domain.records import StoredEvent as LogStoredEvent
from ..postgres.database import Conn
from ..postgres.log import PostgresEventLog, append_events
from ..postgres.tables import TRACKING_DDL, ensure_schema, schema_name

SEPARATOR = "@"
Tail = tuple[int, int]
"""(log version, eventsourcing version) of an aggregate's last event."""


def originator_version(event_id: str, log_version: int) -> int:
    """The eventsourcing version kept in the event id, else the log version."""
    _, sep, version = event_id.rpartition(SEPARATOR)
    return int(version) if sep and version.lstrip("-").isdigit() else log_version


def version_of(stored: LogStoredEvent) -> int:
    """The eventsourcing version of an event read from the log."""
    return originator_version(stored.event.meta.event_id, stored.version)


def originator_id_of(text: str) -> UUID | str:
    """The id as eventsourcing wrote it: a UUID when ``text`` is one in canonical form."""
    try:
        uuid = UUID(text)
    except ValueError:
        return text
    return uuid if str(uuid) == text else text


def to_log_events(stored_events: Sequence[StoredEvent], tails: dict[str, Tail]) -> list[NewEvent]:
    """The log events of ``stored_events``; raise IntegrityError if a version does not increase."""
    latest = dict(tails)
    new = []
    for se in stored_events:
        agg = str(se.originator_id)
        log_version, version = latest.get(agg, (0, -(2**63)))
        if se.originator_version <= version:
            raise IntegrityError(f"{agg} already has version {version}; cannot record {se.originator_version}")
        meta = EventMeta(event_id=f"{agg}{SEPARATOR}{se.originator_version}", aggregate_type="eventsourcing")
        new.append(NewEvent(agg, log_version + 1, se.topic, se.state, meta))
        latest[agg] = (log_version + 1, se.originator_version)
    return new


class EventLogAggregateRecorder(AggregateRecorder):
    """Records eventsourcing stored events in one of our event logs."""

    def __init__(self, log: EventLog) -> None:
        self.log = log

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if stored_events:
            new = to_log_events(stored_events, self._tails({str(s.originator_id) for s in stored_events}))
            try:
                self.log.append(new)
            except ConcurrencyConflict as e:
                raise IntegrityError(str(e)) from e
        return None

    def _tails(self, aggregate_ids: Collection[str]) -> dict[str, Tail]:
        found = self.log.read_aggregates(aggregate_ids)
        return {a: (s[-1].version, version_of(s[-1])) for a, s in found.items() if s}

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        events = [
            StoredEvent(originator_id, version_of(s), s.event.type, s.event.payload)
            for s in self.log.read_aggregate(str(originator_id))
        ]
        chosen = [
            e
            for e in events
            if (gt is None or e.originator_version > gt) and (lte is None or e.originator_version <= lte)
        ]
        if desc:
            chosen.reverse()
        return chosen[:limit] if limit is not None else chosen


def insert_tracking(conn: Conn, s: str, tracking: Tracking) -> None:
    """Record that ``tracking`` was processed; IntegrityError unless it is past the recorded position."""
    cur = conn.execute(
        f"INSERT INTO {s}.tracking AS t (application_name, notification_id) VALUES (%s, %s)"
        " ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
        " WHERE t.notification_id < EXCLUDED.notification_id".encode(),
        [tracking.application_name, tracking.notification_id],
    )
    if cur.rowcount != 1:
        raise IntegrityError(f"{tracking.application_name} is already past notification {tracking.notification_id}")


class PostgresLogTrackingRecorder(TrackingRecorder):
    """Positions of upstream notifications processed, in the embedded log's schema."""

    def __init__(self, log: PostgresEventLog) -> None:
        self.log = log
        self._s = schema_name(log.namespace)
        with log.database.connection() as conn:
            ensure_schema(conn, log.namespace, TRACKING_DDL)

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.log.database.connection() as conn, conn.transaction():
            insert_tracking(conn, self._s, tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        row = self.log.database.fetchone(
            f"SELECT notification_id FROM {self._s}.tracking WHERE application_name = %s", [application_name]
        )
        return int(row[0]) if row else None


class PostgresLogApplicationRecorder(EventLogAggregateRecorder, ApplicationRecorder):
    """Aggregate and application sequences in the embedded log (notification ids are its total order)."""

    log: PostgresEventLog

    def __init__(self, log: PostgresEventLog) -> None:
        super().__init__(log)
        self._s = schema_name(log.namespace)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._insert(stored_events, kwargs.get("tracking"))

    def _insert(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        new = to_log_events(stored_events, self._tails({str(s.originator_id) for s in stored_events}))
        try:
            with self.log.database.connection() as conn, conn.transaction():
                appended = append_events(conn, self.log.namespace, self.log.partitions, new, self.log.claimed_epochs)
                if tracking is not None:
                    insert_tracking(conn, self._s, tracking)
        except ConcurrencyConflict as e:
            raise IntegrityError(str(e)) from e
        return appended.notification_ids

    def _tails(self, aggregate_ids: Collection[str]) -> dict[str, Tail]:
        if not aggregate_ids:
            return {}
        rows = self.log.database.fetchall(
            f"SELECT DISTINCT ON (aggregate_id) aggregate_id, version, event_id FROM {self._s}.events"
            " WHERE aggregate_id = ANY(%s) ORDER BY aggregate_id, version DESC",
            [list(aggregate_ids)],
        )
        return {a: (int(v), originator_version(e, int(v))) for a, v, e in rows}

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        low = (start or 0) if inclusive_of_start else (start or 0) + 1
        rows = self.log.database.fetchall(
            f"SELECT notification_id, aggregate_id, version, type, payload, event_id FROM {self._s}.events"
            " WHERE notification_id >= %s AND notification_id <= coalesce(%s, notification_id)"
            " AND (cardinality(%s::text[]) = 0 OR type = ANY(%s::text[]))"
            " ORDER BY notification_id LIMIT %s",
            [low, stop, list(topics), list(topics), limit],
        )
        return [
            Notification(
                originator_id=originator_id_of(a),
                originator_version=originator_version(e, int(v)),
                topic=t,
                state=bytes(p),
                id=int(n),
            )
            for n, a, v, t, p, e in rows
        ]

    def max_notification_id(self) -> int | None:
        row = self.log.database.fetchone(f"SELECT max(notification_id) FROM {self._s}.events")
        return int(row[0]) if row and row[0] is not None else None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)


class PostgresLogProcessRecorder(PostgresLogApplicationRecorder, PostgresLogTrackingRecorder, ProcessRecorder):
    """Events and the tracking position of what caused them, in one transaction."""

    def __init__(self, log: PostgresEventLog) -> None:
        PostgresLogApplicationRecorder.__init__(self, log)
        PostgresLogTrackingRecorder.__init__(self, log)


class PollingSubscription(ListenNotifySubscription[ApplicationRecorder]):
    """A subscription that looks for new notifications every ``interval_s`` (no LISTEN/NOTIFY)."""

    def __init__(
        self, recorder: ApplicationRecorder, gt: int | None = None, topics: Sequence[str] = (), interval_s: float = 0.05
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._interval_s = interval_s
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            self._has_been_notified.set()
            time.sleep(self._interval_s)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._ticker.join()


__all__ = [
    "EventLogAggregateRecorder",
    "PollingSubscription",
    "PostgresLogApplicationRecorder",
    "PostgresLogProcessRecorder",
    "PostgresLogTrackingRecorder",
]
