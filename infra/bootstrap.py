"""The one place that wires adapters into the core, chosen by the settings.

``bootstrap()`` returns a ``Backbone``: the Python API of a running backbone
(submit commands, read an aggregate's events and state, start a processor).
Nothing here does I/O at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from ..commands.models import Command
from ..commands.ports import Codec, CommandBus, CommandStream, EventLog
from ..commands.processor import CommandProcessor
from ..commands.results import CommandResult
from ..commands.snapshots import Snapshots
from ..domain.documents import Document, DocumentEvent, apply, split_aggregate_id
from ..domain.errors import ResultTimeout
from ..domain.policies import PolicyBook
from ..domain.policy_config import policy_book
from ..domain.records import StoredEvent
from .avro_codec import AvroCodec
from .kafka_client import Connect
from .scheduler import SnapshotScheduler
from .services import embedded_pg_dsn
from .settings import Settings, load_settings
from .snapshot_store import PostgresSnapshotStore, snapshot_mapper, snapshot_policy
from .upcasting import UpcastingCodec


@dataclass
class Backbone:
    """A wired backbone: the event log, the command bus and how to make processor streams."""

    settings: Settings
    log: EventLog
    bus: CommandBus
    codec: Codec
    pg_dsn: str
    _threads: list[tuple[threading.Thread, threading.Event]] = field(default_factory=list)
    _snapshot_store: PostgresSnapshotStore | None = None
    schedulers: list[SnapshotScheduler] = field(default_factory=list)

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
        collection, doc_id = split_aggregate_id(aggregate_id)
        doc = Document(collection, doc_id)
        for _, event in self.history(aggregate_id, to_version):
            doc = apply(doc, event)
        return doc

    def processor(self) -> CommandProcessor:
        """A command processor on a new stream in the processor group, with its snapshot jobs (APScheduler)."""
        if not self.settings.snapshots:
            return CommandProcessor(self.log, make_stream(self), self.codec, self.policies())
        snapshots = self.snapshots()
        scheduler = SnapshotScheduler(snapshots, self.settings.snapshot_interval_s).start()
        self.schedulers.append(scheduler)
        snapshots.on_due = scheduler.due
        return CommandProcessor(self.log, make_stream(self), self.codec, self.policies(), snapshots=snapshots)

    def policies(self) -> PolicyBook:
        """The conflict policy of each collection, from SYNC_POLICIES."""
        return policy_book(self.settings.policies)

    def snapshot_store(self) -> PostgresSnapshotStore:
        """The snapshot store, made on first use (in Kafka mode: on SYNC_PG_DSN, else the embedded server)."""
        if self._snapshot_store is None:
            self.pg_dsn = self.pg_dsn or resolve_pg_dsn(self.settings)
            mapper = snapshot_mapper(self.settings)
            self._snapshot_store = PostgresSnapshotStore(self.pg_dsn, self.settings.namespace, mapper)
        return self._snapshot_store

    def snapshots(self) -> Snapshots:
        """Loading from snapshot + tail and taking snapshots on this log (no store if SYNC_SNAPSHOTS=false)."""
        store = self.snapshot_store() if self.settings.snapshots else None
        return Snapshots(self.log, self.codec, store, snapshot_policy(self.settings))

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


def resolve_pg_dsn(settings: Settings) -> str:
    """SYNC_PG_DSN, or the embedded PostgreSQL server under SYNC_DATA_DIR."""
    return settings.pg_dsn or embedded_pg_dsn(settings.data_dir)


def make_codec(settings: Settings) -> AvroCodec:
    """The Avro codec, compressing and encrypting payloads as configured."""
    keys = {settings.cipher_key_id: settings.cipher_key} if settings.cipher_key else None
    return UpcastingCodec(settings.compress, keys, settings.cipher_key_id if keys else None)


def bootstrap(settings: Settings | None = None) -> Backbone:
    """Wire a backbone from ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    codec = make_codec(settings)
    dsn = resolve_pg_dsn(settings) if settings.embedded else (settings.pg_dsn or "")
    if settings.embedded:
        from .postgres_bus import PostgresCommandBus
        from .postgres_log import PostgresEventLog

        log = PostgresEventLog(dsn, settings.namespace, settings.partitions)
        bus: CommandBus = PostgresCommandBus(dsn, settings.namespace, codec, settings.partitions)
        return Backbone(settings, log, bus, codec, dsn)
    from .kafka_bus import KafkaCommandBus
    from .kafka_index import KafkaIndexStore
    from .kafka_log import KafkaEventLog

    assert settings.kafka_bootstrap
    every = settings.index_checkpoint_every
    store = KafkaIndexStore(lambda: resolve_pg_dsn(settings), settings.namespace) if every else None
    connect = kafka_connect(settings)
    klog = KafkaEventLog(
        settings.kafka_bootstrap, settings.namespace, codec, settings.partitions, None, store, every, connect=connect
    )
    kbus = KafkaCommandBus(settings.kafka_bootstrap, settings.namespace, codec, settings.partitions, connect=connect)
    return Backbone(settings, klog, kbus, codec, dsn)


def make_stream(backbone: Backbone) -> CommandStream:
    """A processor-side stream of the command bus, for the configured technology."""
    settings = backbone.settings
    if settings.embedded:
        from .postgres_log import PostgresEventLog
        from .postgres_stream import PostgresCommandStream

        assert isinstance(backbone.log, PostgresEventLog)
        return PostgresCommandStream(backbone.pg_dsn, settings.namespace, backbone.log)
    from .kafka_log import KafkaEventLog
    from .kafka_stream import KafkaCommandStream

    assert isinstance(backbone.log, KafkaEventLog) and settings.kafka_bootstrap
    return KafkaCommandStream(
        settings.kafka_bootstrap, settings.namespace, backbone.log, backbone.codec, connect=kafka_connect(settings)
    )


def kafka_connect(settings: Settings) -> Connect:
    """How the Kafka log, bus and stream make their client (the one place to plug in another library)."""
    from .kafka_python import KafkaPythonClient

    return KafkaPythonClient


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
