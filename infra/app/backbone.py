"""The ``Backbone`` facade: the Python API of a wired backbone.

Submit commands, read an aggregate's events and state, start a processor, open the read
side. Every adapter arrives through the constructor: the log, the bus and the codec, and a
``Wiring`` that makes what is made on demand (processor streams, the snapshot store, the
snapshot scheduler, the read side). ``infra/bootstrap.py`` is the one place that builds it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ...commands.models import Command
from ...commands.ports import Codec, CommandBus, CommandStream, EventLog, SnapshotStore
from ...commands.processor import CommandProcessor
from ...commands.results import CommandResult
from ...commands.snapshots import SnapshotPolicy, Snapshots
from ...domain.documents import Document, DocumentEvent, fold, split_aggregate_id
from ...domain.errors import ResultTimeout
from ...domain.limits import Limits
from ...domain.policies import PolicyBook
from ...domain.policy_config import policy_book
from ...domain.records import StoredEvent
from ...projections.builtin import BUILTIN
from ...projections.projection import Registry
from ..settings import Settings

if TYPE_CHECKING:
    from .read_side import ReadSide


class Scheduler(Protocol):
    """Background jobs of a processor process (snapshots)."""

    def due(self, aggregate_ids: Iterable[str]) -> None: ...

    def idle(self, timeout_s: float = 10.0) -> bool: ...

    def shutdown(self) -> None: ...


class Wiring(ABC):
    """How a backbone makes the parts it needs on demand, for the configured technologies."""

    @abstractmethod
    def stream(self, backbone: Backbone) -> CommandStream:
        """A new processor-side stream of the command bus (a member of the processor group)."""

    @abstractmethod
    def snapshot_store(self, backbone: Backbone) -> SnapshotStore:
        """A new snapshot store on the backbone's PostgreSQL server."""

    @abstractmethod
    def scheduler(self, snapshots: Snapshots, interval_s: float) -> Scheduler:
        """Started snapshot jobs: every ``interval_s`` and when ``due`` names aggregates."""

    @abstractmethod
    def read_side(self, backbone: Backbone, registry: Registry) -> ReadSide:
        """The projections of the backbone's namespace over its log."""


@dataclass
class Backbone:
    """A wired backbone: the event log, the command bus, the codec, and how to make the rest."""

    settings: Settings
    log: EventLog
    bus: CommandBus
    codec: Codec
    pg_dsn: str
    wiring: Wiring
    _snapshot_store: SnapshotStore | None = None
    schedulers: list[Scheduler] = field(default_factory=list)

    def submit(self, command: Command, timeout_s: float | None = None) -> CommandResult:
        """Send one command through the bus and wait for its result."""
        return self.submit_many([command], timeout_s)[0]

    def submit_many(self, commands: Sequence[Command], timeout_s: float | None = None) -> list[CommandResult]:
        """Send commands through the bus and wait for all their results, in order."""
        timeout = timeout_s if timeout_s is not None else self.settings.result_timeout_s
        self.bus.send(commands)
        ids = [c.command_id for c in commands]
        results = self.bus.wait_results(ids, timeout)
        missing = [cid for cid in ids if cid not in results]
        if missing:
            raise ResultTimeout(
                f"no result for {len(missing)} of {len(ids)} commands within {timeout:.0f} s "
                f"(first: {missing[0]}); is a processor running? start one with `syncbackbone serve`"
            )
        return [results[cid] for cid in ids]

    def history(self, aggregate_id: str, to_version: int | None = None) -> list[tuple[StoredEvent, DocumentEvent]]:
        """The stored events of an aggregate with their decoded domain events."""
        stored = self.log.read_aggregate(aggregate_id, 1, to_version)
        return [(s, self.codec.decode_event(s)) for s in stored]

    def document(self, aggregate_id: str, to_version: int | None = None) -> Document:
        """A document's state folded from its events (up to ``to_version``)."""
        return fold(Document(*split_aggregate_id(aggregate_id)), (e for _, e in self.history(aggregate_id, to_version)))

    def stream(self) -> CommandStream:
        """A new processor-side stream of the command bus."""
        return self.wiring.stream(self)

    def processor(self) -> CommandProcessor:
        """A command processor on a new stream in the processor group, with its snapshot jobs."""
        if not self.settings.snapshots:
            return CommandProcessor(self.log, self.stream(), self.codec, self.policies())
        snapshots = self.snapshots()
        scheduler = self.wiring.scheduler(snapshots, self.settings.snapshot_interval_s)
        self.schedulers.append(scheduler)
        snapshots.on_due = scheduler.due
        return CommandProcessor(self.log, self.stream(), self.codec, self.policies(), snapshots=snapshots)

    def policies(self) -> PolicyBook:
        """The conflict policy of each collection, from SYNC_POLICIES, deciding within ``limits()``."""
        return policy_book(self.settings.policies, self.limits())

    def limits(self) -> Limits:
        """What one change may carry: SYNC_MAX_DOCUMENT_BYTES, SYNC_MAX_CLOCK_SKEW_MS, SYNC_MAX_COUNTER_STEP."""
        settings = self.settings
        return Limits(settings.max_document_bytes, settings.max_clock_skew_ms, settings.max_counter_step)

    def snapshot_store(self) -> SnapshotStore:
        """The snapshot store, made on first use."""
        if self._snapshot_store is None:
            self._snapshot_store = self.wiring.snapshot_store(self)
        return self._snapshot_store

    def snapshots(self) -> Snapshots:
        """Loading from snapshot + tail and taking snapshots on this log (no store if SYNC_SNAPSHOTS=false)."""
        store = self.snapshot_store() if self.settings.snapshots else None
        policy = SnapshotPolicy(self.settings.snapshot_every, self.settings.snapshot_every_by_type)
        return Snapshots(self.log, self.codec, store, policy)

    def read_side(self, registry: Registry = BUILTIN) -> ReadSide:
        """The read side of this backbone: its log as the feed, read models on its PostgreSQL server."""
        return self.wiring.read_side(self, registry)

    def running_processor(self) -> AbstractContextManager[CommandProcessor]:
        """A processor working in a background thread for the duration of the block."""
        return running(self.processor())

    def close(self) -> None:
        """Release every connection."""
        for scheduler in self.schedulers:
            scheduler.shutdown()
        if self._snapshot_store is not None:
            self._snapshot_store.close()
        self.bus.close()
        self.log.close()


@contextmanager
def running(processor: CommandProcessor) -> Iterator[CommandProcessor]:
    """``processor`` working in a background thread for the duration of the block, then closed."""
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), name="processor", daemon=True)
    thread.start()
    try:
        yield processor
    finally:
        stop.set()
        thread.join(10)
        processor.close()
