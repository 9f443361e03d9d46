"""Ports of the write side: the event log, the command bus, the codec and the snapshot store.

Adapters live in ``infra/`` (one module per technology) and pass the contract
tests in ``tests/contracts/``. The core sees only these abstract classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from ..domain.documents import DocumentEvent
from ..domain.errors import LogError
from ..domain.records import EventMeta, NewEvent, StoredEvent
from ..domain.snapshots import SnapshotPoint
from .models import Command
from .results import CommandResult, DeadLetter

Header = tuple[str, bytes]
RawCommand = tuple[str, bytes, Sequence[Header]]
"""An encoded command record: (aggregate id as key, Avro single-object value, headers)."""


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One raw record read from the command bus."""

    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[Header, ...] = ()


@dataclass(slots=True)
class PartitionOutcome:
    """What the processor decided for a run of records of one partition."""

    partition: int
    next_offset: int
    accepted: list[tuple[str, str, list[NewEvent]]] = field(default_factory=list)
    """(command id, aggregate id, events) of each accepted command, in order."""
    answered: list[CommandResult] = field(default_factory=list)
    """Results that need no append: rejections and repeats of accepted commands."""
    dead: list[DeadLetter] = field(default_factory=list)


class EventLog(ABC):
    """A partitioned, append-only log of events keyed by aggregate id."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many partitions the log has."""

    @abstractmethod
    def partition_for(self, aggregate_id: str) -> int:
        """The partition that holds ``aggregate_id``'s events."""

    @abstractmethod
    def append(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append all events or none; raise ConcurrencyConflict if a version is not the next one."""

    @abstractmethod
    def read_aggregate(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The aggregate's events with from_version <= version <= to_version, in order."""

    @abstractmethod
    def read_partition(self, partition: int, from_offset: int, limit: int = 1000) -> list[StoredEvent]:
        """Events of ``partition`` at offsets >= from_offset, in log order, at most ``limit``."""

    @abstractmethod
    def end_offset(self, partition: int) -> int:
        """One past the offset of the partition's last event (the next event gets an offset no lower;
        on Kafka, transaction and catch-up markers leave gaps)."""

    @abstractmethod
    def find_command(self, aggregate_id: str, command_id: str) -> list[StoredEvent]:
        """The events that command ``command_id`` appended to ``aggregate_id`` ([] if none)."""

    def find_commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        """For (aggregate id, command id) pairs, the events of each command that has any."""
        found = {cid: self.find_command(agg, cid) for agg, cid in keys}
        return {cid: events for cid, events in found.items() if events}

    def read_aggregates(self, aggregate_ids: Collection[str]) -> dict[str, list[StoredEvent]]:
        """The events of each aggregate, all versions, in order."""
        return self.read_aggregates_from({agg: 1 for agg in aggregate_ids})

    def read_aggregates_from(self, from_versions: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
        """The events of each aggregate from the version given for it on, in order."""
        return {agg: self.read_aggregate(agg, first) for agg, first in from_versions.items()}

    def checkpoint(self) -> int:
        """Save what lets a restarted reader skip the log read so far; how many events that covered
        (0 where reads need no such thing, as on a log stored in a database)."""
        return 0

    @abstractmethod
    def claim(self, partitions: Collection[int]) -> None:
        """Become the single writer of ``partitions``, fencing any previous writer."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and writers."""


@dataclass(frozen=True, slots=True)
class SnapshotLookup:
    """What a snapshot store holds for some aggregates: usable snapshots, and why others are not."""

    found: dict[str, SnapshotPoint] = field(default_factory=dict)
    unusable: dict[str, str] = field(default_factory=dict)
    """aggregate id -> why its snapshot was ignored (corrupt row, newer code, no upcaster)."""


class SnapshotStore(ABC):
    """The latest snapshot of each aggregate, with the version and log position it reflects."""

    @abstractmethod
    def save(self, points: Sequence[SnapshotPoint], overwrite: Collection[str] = ()) -> int:
        """Keep each point unless a newer snapshot of its aggregate is kept (``overwrite``: replace
        regardless, e.g. an unusable row); return how many were stored."""

    @abstractmethod
    def load(self, aggregate_ids: Collection[str]) -> SnapshotLookup:
        """The latest snapshot of each aggregate that has one; rows that cannot be used are reported in
        ``unusable`` with the reason, never raised."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class CommandBus(ABC):
    """The submitting side of the bus: send commands, wait for their results."""

    @abstractmethod
    def send(self, commands: Sequence[Command]) -> None:
        """Publish commands to ``<ns>.commands``, each to its aggregate's partition."""

    @abstractmethod
    def send_raw(self, records: Sequence[RawCommand]) -> None:
        """Publish already-encoded command records (services that write Avro themselves)."""

    @abstractmethod
    def wait_results(self, command_ids: Collection[str], timeout_s: float) -> dict[str, CommandResult]:
        """The results that arrive for ``command_ids`` within ``timeout_s`` (possibly fewer)."""

    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters of ``<ns>.commands.dlq``, oldest first."""

    @abstractmethod
    def processor_alive(self, max_age_s: float = 5.0) -> bool:
        """Whether some processor owns the command partitions now."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class CommandStream(ABC):
    """The processor's side of the bus: the owned partitions of ``<ns>.commands``."""

    @abstractmethod
    def poll(self, timeout_s: float) -> list[CommandRecord]:
        """The next records of owned partitions, in partition order (may be empty)."""

    @abstractmethod
    def commit(self, outcome: PartitionOutcome) -> list[CommandResult]:
        """Atomically append the accepted events, publish all results and dead letters, and
        advance the partition's input offset; return every result published. Raise
        WriterFenced if this process no longer owns the partition. After a failed commit
        the partition's records are delivered again from the last committed offset."""

    def commit_many(self, outcomes: Sequence[PartitionOutcome]) -> list[list[CommandResult] | LogError]:
        """``commit`` each outcome (adapters may overlap them); a failed one gives its LogError."""
        done: list[list[CommandResult] | LogError] = []
        for outcome in outcomes:
            try:
                done.append(self.commit(outcome))
            except LogError as e:
                done.append(e)
        return done

    @abstractmethod
    def rewind(self) -> None:
        """Deliver again every polled record not committed yet (a round failed before its commit)."""

    @abstractmethod
    def on_reassign(self, callback: Callable[[frozenset[int]], None]) -> None:
        """Call ``callback`` with the newly owned partitions after every (re)assignment."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group and release resources."""


class Codec(ABC):
    """Turns commands and events into bytes (Avro) and back."""

    @abstractmethod
    def encode_command(self, command: Command) -> bytes:
        """The record value of ``command``."""

    @abstractmethod
    def decode_command(self, value: bytes) -> Command:
        """The command in a record value; raise InvalidInput if it is not one."""

    @abstractmethod
    def new_event(self, aggregate_id: str, version: int, event: DocumentEvent, meta: EventMeta) -> NewEvent:
        """The event ready to append: payload encoded (and compressed/encrypted as configured),
        with ``meta``'s compression, encryption_key_id and schema_version filled in."""

    @abstractmethod
    def decode_event(self, stored: StoredEvent) -> DocumentEvent:
        """The domain event in a stored event; raise UnknownSchema if it cannot be read."""
