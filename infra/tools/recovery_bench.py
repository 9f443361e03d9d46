"""``syncbackbone bench recovery``: restart-to-ready time with and without snapshots, by history length.

For each log (the embedded PostgreSQL log; Kafka on Tansu or SYNC_KAFKA_BOOTSTRAP) it grows
the history of 10 aggregates to a tenth of ``--events`` and then to ``--events``. At each
length the newest snapshots are K/2 events old (K = SYNC_SNAPSHOT_EVERY): they are taken,
then every aggregate gets K/2 more events, as if the processor had snapshotted K/2 events
ago; on Kafka the partition index is saved then too (as the processor does every
SYNC_INDEX_CHECKPOINT_EVERY events). A restart is a fresh process's work: wire new adapters
(on Kafka, claim the partitions: fence the old writer and read the records after the saved
index checkpoint), then load every aggregate, once from zero and once from snapshot + tail.
With snapshots the load reads K/2 + 1 events per aggregate whatever the history length.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ...domain.documents import DocumentCreated, DocumentEvent, DocumentPatched, aggregate_id
from ...domain.records import EventMeta, NewEvent
from ..bootstrap import Backbone, bootstrap, resolve_pg_dsn
from ..common.progress import Progress
from ..postgres.database import drop_namespace
from ..settings import Settings, load_settings
from .bench import bench_ns, kafka_bootstrap

AGGREGATES = 10
BATCH = 5000


@dataclass(frozen=True, slots=True)
class Restart:
    """One measured restart: seconds to ready, and the events the load read."""

    seconds: float
    read: int
    scanned: int | None = None
    """Records the Kafka log read to catch its partitions up."""

    def __str__(self) -> str:
        scanned = "" if self.scanned is None else f", {self.scanned:,} scanned"
        return f"{self.seconds:6.3f} s ({self.read:,} events read{scanned})"


def run_recovery_bench(events: int, only: str | None) -> int:
    lines: list[str] = []
    if only in (None, "embedded"):
        lines += bench_log(load_settings(kafka_bootstrap=None, namespace=bench_ns()), events)
    if only in (None, "kafka"):
        with kafka_bootstrap() as servers:
            lines += bench_log(load_settings(kafka_bootstrap=servers, namespace=bench_ns()), events)
    print("\n".join(["", *lines]))
    return 0


def bench_log(settings: Settings, events: int) -> list[str]:
    name = "kafka log (Tansu)" if settings.kafka_bootstrap else "embedded log (PostgreSQL)"
    k = settings.snapshot_every
    print(f"== {name}, namespace {settings.namespace}", file=sys.stderr)
    ids = [aggregate_id("recovery", f"a{i}") for i in range(AGGREGATES)]
    lines = [
        f"recovery, {name}: {AGGREGATES} aggregates, snapshot every {k} events, newest snapshots {k // 2} events old",
        f"  {'history':>9}   {'without snapshots':<46} with snapshots",
    ]
    writer = bootstrap(settings)
    try:
        for length in sorted({max(events // 10, AGGREGATES * k), events}):
            grow(writer, ids, length)
            without = restart(settings.model_copy(update={"snapshots": False}), ids)
            with_ = restart(settings, ids)
            lines.append(f"  {length:>9,}   {without!s:<46} {with_}")
    finally:
        writer.close()
        drop_namespace(resolve_pg_dsn(settings), settings.namespace)
    return lines


def grow(backbone: Backbone, ids: Sequence[str], length: int) -> None:
    """Append events until the history holds ``length``; snapshot K/2 events before the end."""
    tail = len(ids) * (backbone.settings.snapshot_every // 2)
    versions = {agg: len(backbone.log.read_aggregate(agg)) for agg in ids}
    have = sum(versions.values())
    append(backbone, versions, max(0, length - tail - have))
    backbone.snapshots().take(ids)
    backbone.log.checkpoint()
    append(backbone, versions, length - sum(versions.values()))


def append(backbone: Backbone, versions: dict[str, int], count: int) -> None:
    """Append ``count`` events round-robin over the aggregates, in batches."""
    progress = Progress("append", count, unit="events")
    ids = sorted(versions)
    for start in range(0, count, BATCH):
        batch: list[NewEvent] = []
        for i in range(start, min(start + BATCH, count)):
            agg = ids[i % len(ids)]
            versions[agg] += 1
            event: DocumentEvent = DocumentPatched({"n": i, "text": "x" * 64})
            if versions[agg] == 1:
                event = DocumentCreated({"n": i})
            batch.append(backbone.codec.new_event(agg, versions[agg], event, EventMeta(actor="bench")))
        backbone.log.append(batch)
        progress.advance(len(batch))
    progress.done()


def restart(settings: Settings, ids: Sequence[str]) -> Restart:
    """A fresh process's time from wiring to every aggregate loaded."""
    started = time.perf_counter()
    backbone = bootstrap(settings)
    try:
        if settings.kafka_bootstrap:
            backbone.log.claim(range(backbone.log.partitions))  # what a processor does on assignment
        loaded = backbone.snapshots().load(ids, use_snapshots=settings.snapshots)
        seconds = time.perf_counter() - started
        scanned = getattr(backbone.log, "records_read", None)
    finally:
        backbone.close()
    return Restart(seconds, sum(r.read for r in loaded.values()), scanned)
