"""``syncbackbone bench commands``: command throughput and latency against raw baselines.

For each log (Kafka on Tansu or SYNC_KAFKA_BOOTSTRAP; the embedded PostgreSQL log) it
starts a processor process (``syncbackbone serve``), then measures from this process:
- throughput: N PutDocument commands sent in chunks, until every result is back;
- latency: submit-to-result p50/p95/p99 at a paced 1,000 commands/s;
- the raw baseline in the same run: the client library's own producer rate on the same broker,
  or psycopg's multi-row INSERT rate on the same server; and the ratio.
On Kafka it runs once per installed client library (confluent-kafka, kafka-python), each against
its own raw baseline; on a Tansu it starts itself, with the ``tansu`` broker profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec

from ...commands.models import PutDocument
from ...domain.errors import ResultTimeout
from ..bootstrap import Backbone, bootstrap, kafka_client_library, resolve_pg_dsn
from ..common.progress import Progress
from ..postgres.database import drop_namespace
from ..runtime.processes import Tansu
from ..settings import Settings, load_settings


@dataclass(frozen=True)
class Figures:
    log: str
    commands_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    raw_name: str
    raw_per_s: float

    def lines(self) -> list[str]:
        ratio = self.commands_per_s / self.raw_per_s if self.raw_per_s else 0.0
        return [
            f"{self.log}: {self.commands_per_s:,.0f} commands/s end to end",
            f"  latency at 1,000 commands/s: p50 {self.p50_ms:.1f} ms, "
            f"p95 {self.p95_ms:.1f} ms, p99 {self.p99_ms:.1f} ms",
            f"  raw baseline, {self.raw_name}: {self.raw_per_s:,.0f} records/s; ratio {ratio:.2f}",
        ]


def run_bench(count: int, only: str | None) -> int:
    """``bench commands``: each log's figures against their raw baselines, printed at the end."""
    figures = []
    if only in (None, "embedded"):
        figures.append(bench_log(load_settings(kafka_bootstrap=None, namespace=bench_ns()), count))
    if only in (None, "kafka"):
        broker = load_settings().kafka_broker if os.environ.get("SYNC_KAFKA_BOOTSTRAP") else "tansu"
        with kafka_bootstrap() as bootstrap_servers:
            for library in kafka_libraries():
                settings = load_settings(
                    kafka_bootstrap=bootstrap_servers, namespace=bench_ns(), kafka_client=library, kafka_broker=broker
                )
                figures.append(bench_log(settings, count))
    print()
    for f in figures:
        print("\n".join(f.lines()))
    return 0


def kafka_libraries() -> list[str]:
    """The Kafka client libraries to measure: SYNC_KAFKA_CLIENT if set, else each one installed."""
    chosen = load_settings().kafka_client
    if chosen:
        return [chosen]
    return ["confluent", "kafka-python"] if find_spec("confluent_kafka") else ["kafka-python"]


def bench_ns() -> str:
    return f"bench_{uuid.uuid4().hex[:8]}"


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """SYNC_KAFKA_BOOTSTRAP, or a Tansu broker started for the run."""
    configured = os.environ.get("SYNC_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    broker = Tansu().start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def bench_log(settings: Settings, count: int) -> Figures:
    kafka = f"kafka log ({settings.kafka_broker} profile, {kafka_client_library(settings)})"
    name = kafka if settings.kafka_bootstrap else "embedded log (PostgreSQL)"
    print(f"== {name}, namespace {settings.namespace}", file=sys.stderr)
    backbone, pg_dsn = bootstrap(settings), resolve_pg_dsn(settings)
    try:
        with processor_process(settings, pg_dsn):
            warm_up(backbone)
            rate = throughput(backbone, count)
            p50, p95, p99 = latency(backbone, rate_per_s=1000, seconds=5)
        raw_name, raw = raw_baseline(settings, backbone, count)
    finally:
        backbone.close()
        drop_namespace(pg_dsn, settings.namespace)  # the bench's own; its Kafka topics go with the Tansu it started
    return Figures(name, rate, p50, p95, p99, raw_name, raw)


@contextmanager
def processor_process(settings: Settings, pg_dsn: str) -> Iterator[None]:
    env = dict(os.environ, SYNC_NAMESPACE=settings.namespace, SYNC_PARTITIONS=str(settings.partitions))
    if settings.kafka_bootstrap:
        env |= {"SYNC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "SYNC_KAFKA_BROKER": settings.kafka_broker}
        env["SYNC_KAFKA_CLIENT"] = kafka_client_library(settings)
    else:
        env.pop("SYNC_KAFKA_BOOTSTRAP", None)
        env["SYNC_PG_DSN"] = pg_dsn
    proc = subprocess.Popen([sys.executable, "-m", "syncbackbone.infra.cli", "serve"], env=env)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def commands(n: int, prefix: str) -> list[PutDocument]:
    docs = max(1, n // 10)
    return [
        PutDocument(collection="bench", id=f"{prefix}-{i % docs}", data={"n": i, "text": "x" * 64}) for i in range(n)
    ]


def warm_up(backbone: Backbone) -> None:
    started = time.monotonic()
    while True:
        try:
            backbone.submit_many(commands(10, "warm"), timeout_s=5)
            return
        except ResultTimeout:
            if time.monotonic() - started > 90:
                raise
            print("  waiting for the processor to own its partitions...", file=sys.stderr)


def throughput(backbone: Backbone, count: int, chunk: int = 2000) -> float:
    batch = commands(count, uuid.uuid4().hex[:6])
    progress = Progress("throughput", count, unit="commands")
    started = time.perf_counter()
    window: list[PutDocument] = []
    for i in range(0, count, chunk):
        part = batch[i : i + chunk]
        backbone.bus.send(part)
        window.extend(part)
        if len(window) >= 4 * chunk or i + chunk >= count:
            wait_all(backbone, [c.command_id for c in window])
            progress.advance(len(window))
            window = []
    elapsed = time.perf_counter() - started
    progress.done()
    return count / elapsed


def wait_all(backbone: Backbone, ids: list[str], timeout_s: float = 120) -> None:
    results = backbone.bus.wait_results(ids, timeout_s)
    if len(results) < len(ids):
        raise ResultTimeout(f"only {len(results)} of {len(ids)} results arrived within {timeout_s:.0f} s")


def latency(backbone: Backbone, rate_per_s: int, seconds: float) -> tuple[float, float, float]:
    total = int(rate_per_s * seconds)
    batch = commands(total, uuid.uuid4().hex[:6])
    tick, per_tick = 0.01, max(1, rate_per_s // 100)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    progress = Progress("latency", total, unit="commands")
    start = time.perf_counter()
    for i in range(0, total, per_tick):
        due = start + (i // per_tick) * tick
        while time.perf_counter() < due:
            collect(backbone, sent_at, latencies, 0.001)
        part = batch[i : i + per_tick]
        backbone.bus.send(part)
        now = time.perf_counter()
        sent_at.update((c.command_id, now) for c in part)
        progress.advance(len(part))
    deadline = time.perf_counter() + 60
    while sent_at and time.perf_counter() < deadline:
        collect(backbone, sent_at, latencies, 0.01)
    progress.done()
    latencies.sort()
    return tuple(percentile(latencies, q) * 1000 for q in (0.50, 0.95, 0.99))  # type: ignore[return-value]


def collect(backbone: Backbone, sent_at: dict[str, float], latencies: list[float], timeout_s: float) -> None:
    if not sent_at:
        time.sleep(timeout_s)
        return
    arrived = backbone.bus.wait_results(list(sent_at), timeout_s)
    now = time.perf_counter()
    for cid in arrived:
        latencies.append(now - sent_at.pop(cid))


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def raw_baseline(settings: Settings, backbone: Backbone, count: int) -> tuple[str, float]:
    if settings.kafka_bootstrap and kafka_client_library(settings) == "confluent":
        from ..kafka.confluent.baseline import raw_produce_rate as confluent_rate

        return "confluent-kafka producer, 200-byte records", confluent_rate(settings.kafka_bootstrap, count)
    if settings.kafka_bootstrap:
        from ..kafka.kafka_python.baseline import raw_produce_rate

        return "kafka-python producer, 200-byte records", raw_produce_rate(settings.kafka_bootstrap, count)
    return "psycopg multi-row INSERT, 200-byte rows", raw_pg_rate(backbone.pg_dsn, settings.namespace, count)


def raw_pg_rate(dsn: str, namespace: str, count: int) -> float:
    import psycopg

    rows = [(i % 4, i, f"bench/{i}", b"x" * 200) for i in range(count)]
    with psycopg.connect(dsn) as conn:
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{namespace}".raw_rows (p int, o bigint, k text, v bytea, PRIMARY KEY (p, o))'
        )
        started = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, count, 1000):
                cur.executemany(f'INSERT INTO "{namespace}".raw_rows VALUES (%s, %s, %s, %s)', rows[i : i + 1000])
                conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(f'DROP TABLE "{namespace}".raw_rows')
    return count / elapsed
