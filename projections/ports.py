"""Ports of the read side: the event feed, the read-model store with checkpoints, partition claims.

Adapters live in ``infra/`` (``projection_feed``, ``projection_store``, ``projection_claims``);
the store passes the contract in ``tests/contracts/``. The runner sees only these classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..domain.documents import DocumentEvent
from ..domain.records import StoredEvent
from .changes import Change
from .projection import Projection


class EventFeed(ABC):
    """The event log as the read side sees it: partitions read from an offset, payloads decoded."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many partitions the log has."""

    @abstractmethod
    def read(self, partition: int, from_offset: int, limit: int) -> list[StoredEvent]:
        """Events of ``partition`` at offsets >= from_offset, in log order, at most ``limit``."""

    @abstractmethod
    def end_offset(self, partition: int) -> int:
        """The offset after the last event of ``partition``."""

    @abstractmethod
    def decode(self, stored: StoredEvent) -> DocumentEvent:
        """The domain event in ``stored``; raise a SyncBackboneError if it cannot be read."""


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """An event a projection could not apply, or one parked behind such an event of its aggregate."""

    partition: int
    offset: int
    aggregate_id: str
    version: int
    type: str
    error_type: str
    error: str
    parked: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """A stored dead letter: its sequence number, the event it holds, and how it was resolved."""

    seq: int
    dead: DeadEvent
    resolution: str | None = None


class ReadModelSession(ABC):
    """One transaction on one partition of one projection's read models."""

    @abstractmethod
    def seen(self, aggregate_ids: Collection[str]) -> dict[str, int]:
        """The last version handled (applied or dead-lettered) of each aggregate that has one."""

    @abstractmethod
    def parked(self, aggregate_ids: Collection[str]) -> set[str]:
        """Those of ``aggregate_ids`` that have an unresolved dead letter."""

    @abstractmethod
    def apply(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` all or none (the session stays usable); raise ChangeRejected if their data is refused."""

    @abstractmethod
    def record(self, seen: Mapping[str, int], dead: Sequence[DeadEvent]) -> None:
        """Store the last handled version of aggregates and append dead letters, in order."""

    @abstractmethod
    def open_letters(self, aggregate_id: str) -> list[DeadLetterEntry]:
        """The unresolved dead letters of ``aggregate_id``, oldest first."""

    @abstractmethod
    def resolve(self, seqs: Collection[int], resolution: str) -> None:
        """Mark dead letters resolved (``retried`` or ``skipped``)."""

    @abstractmethod
    def advance(self, next_offset: int) -> None:
        """Set the partition's checkpoint, committed with everything else in the session."""


class ReadModelStore(ABC):
    """One copy (live, or a rebuild/verify scratch copy) of one projection's read models and checkpoints."""

    projection: Projection

    @abstractmethod
    def install(self, partitions: int) -> None:
        """Create the tables and one checkpoint (offset 0) per partition, if missing."""

    @abstractmethod
    def checkpoints(self) -> dict[int, int]:
        """The next offset to apply, per partition."""

    @abstractmethod
    def session(self, partition: int, expected: int | None) -> AbstractContextManager[ReadModelSession]:
        """A transaction holding the partition's checkpoint row; raise CheckpointMoved if it is not ``expected``."""

    @abstractmethod
    def dead_letters(
        self, limit: int, include_resolved: bool = False, aggregate_id: str | None = None
    ) -> list[DeadLetterEntry]:
        """Dead letters (of ``aggregate_id`` if given), oldest first."""

    @abstractmethod
    def scratch_copy(self, purpose: str) -> ReadModelStore:
        """A new, empty copy of this projection's read models (not yet installed)."""

    @abstractmethod
    def swap_in(self, copy: ReadModelStore) -> None:
        """Atomically make ``copy`` the live read models (with its checkpoints); drop the old ones."""

    @abstractmethod
    def diff(self, copy: ReadModelStore, limit: int) -> list[str]:
        """Rows that differ between this store and ``copy``; raise CheckpointMoved unless both are at one checkpoint."""

    @abstractmethod
    def discard(self) -> None:
        """Drop this copy and everything in it."""


class PartitionClaims(ABC):
    """Which partitions of a projection this worker applies; at most one worker owns each."""

    @abstractmethod
    def claim(self, partitions: int) -> frozenset[int]:
        """Take a fair share of the free partitions (releasing extras); return the ones owned now."""

    @abstractmethod
    def release(self) -> None:
        """Give up every owned partition."""


class ProgressSink(Protocol):
    """Where long work reports how far it got (``infra.progress.Progress`` fits)."""

    def advance(self, n: int = 1) -> None: ...

    def done(self) -> None: ...
