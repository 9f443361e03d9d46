"""``syncbackbone bench idle``: what an idle ``serve`` and ``projections run`` append and burn, against raw baselines.

For each broker profile on Kafka (SYNC_KAFKA_BROKER=kafka, then tansu; on a Tansu broker
started for the run, or SYNC_KAFKA_BOOTSTRAP) and for the embedded PostgreSQL log, in a
fresh namespace: start ``serve``, submit one command (``syncbackbone submit``), start
``projections run`` and wait until it has projected the document; then watch both idle for
``--seconds``. It reports:
- the records appended meanwhile to each of the namespace's topics (Kafka: high watermarks,
  which every record moves, a marker too) or tables (embedded: next offsets and result and
  dead-letter sequence numbers);
- the CPU each process used, as a share of one core (and the broker's, when the run started it);
- the raw baselines from the same window: a topic (or table) nobody writes, and an idle
  ``python -c 'import time; time.sleep(...)'`` process's CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import psutil

from ...domain.errors import LogError, ResultTimeout
from ..bootstrap import kafka_connect, resolve_pg_dsn
from ..kafka.client import KafkaClient
from ..kafka.partitions import Topics
from ..postgres.database import Database, drop_namespace
from ..settings import Settings, load_settings
from .bench import bench_ns, kafka_bootstrap

PARTITIONS = 4
BASELINE = "idle-baseline"
"""The topic (or table) of the namespace that nobody writes: the raw baseline of the records count."""
Counter = Callable[[], dict[str, int]]


@dataclass(frozen=True)
class IdleFigures:
    """One log's idle window: records appended per topic, CPU per process (% of one core), and the baselines."""

    name: str
    seconds: float
    appended: dict[str, int]
    baseline_appended: int
    cpu: dict[str, float]
    baseline_cpu: float

    def lines(self) -> list[str]:
        records = ", ".join(f"{topic} +{n:,}" for topic, n in self.appended.items())
        cpu = ", ".join(f"{process} {share:.1f} %" for process, share in self.cpu.items())
        return [
            f"{self.name}, idle {self.seconds:g} s: {sum(self.appended.values()):,} records appended ({records})",
            f"  CPU: {cpu}",
            f"  raw baselines: {BASELINE}, which nobody writes, +{self.baseline_appended:,}; "
            f"an idle python process {self.baseline_cpu:.1f} %",
        ]


def run_idle_bench(seconds: float, only: str | None) -> int:
    """``bench idle``: each profile's figures against their raw baselines, printed at the end."""
    figures = []
    if only in (None, "kafka"):
        with kafka_bootstrap() as bootstrap_servers:
            broker = broker_process(bootstrap_servers)
            for profile in ("kafka", "tansu"):
                settings = load_settings(kafka_bootstrap=bootstrap_servers, kafka_broker=profile, namespace=bench_ns())
                figures.append(idle_log(settings, seconds, broker))
    if only in (None, "embedded"):
        figures.append(idle_log(load_settings(kafka_bootstrap=None, namespace=bench_ns()), seconds, None))
    print()
    for f in figures:
        print("\n".join(f.lines()))
    return 0


def broker_process(bootstrap_servers: str) -> psutil.Process | None:
    """The local process listening on the broker's port (the Tansu this run started), if there is one."""
    port = int(bootstrap_servers.rsplit(":", 1)[-1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def idle_log(settings: Settings, seconds: float, broker: psutil.Process | None) -> IdleFigures:
    """Set up ``serve`` and ``projections run`` with one command through, then watch them idle."""
    name = (
        f"kafka log (Tansu), SYNC_KAFKA_BROKER={settings.kafka_broker}" if settings.kafka_bootstrap else "embedded log"
    )
    print(f"== {name}, namespace {settings.namespace}", file=sys.stderr)
    pg_dsn = resolve_pg_dsn(settings)
    env = process_env(settings, pg_dsn)
    try:
        with ExitStack() as running:
            sleeper = running.enter_context(started(env, "-c", f"import time; time.sleep({seconds + 300})"))
            serve = running.enter_context(started(env, "-m", "syncbackbone.infra.cli", "serve"))
            submit_one(env)
            worker = running.enter_context(started(env, "-m", "syncbackbone.infra.cli", "projections", "run"))
            wait_projected(pg_dsn, settings.namespace)
            count, baseline = running.enter_context(counters(settings, pg_dsn))
            watched = {"serve": serve, "projections run": worker} | ({"broker": broker} if broker else {})
            return watch(name, seconds, watched, sleeper, count, baseline)
    finally:
        drop_namespace(pg_dsn, settings.namespace)


def process_env(settings: Settings, pg_dsn: str) -> dict[str, str]:
    """The environment of the watched processes: this run's namespace, log and broker profile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env |= {"SYNC_NAMESPACE": settings.namespace, "SYNC_PARTITIONS": str(PARTITIONS), "SYNC_PG_DSN": pg_dsn}
    if settings.kafka_bootstrap:
        env |= {"SYNC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "SYNC_KAFKA_BROKER": settings.kafka_broker}
    return env


@contextmanager
def started(env: dict[str, str], *args: str) -> Iterator[psutil.Process]:
    """A Python process running ``args``, stopped (SIGTERM, then SIGKILL) at the end of the block."""
    proc = subprocess.Popen([sys.executable, *args], env=env, stdin=subprocess.DEVNULL)
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def submit_one(env: dict[str, str]) -> None:
    """One command through ``syncbackbone submit`` (which exits before the window opens)."""
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "submit", "CreateDocument"]
    command += ["--collection", "idle", "--id", "one", "--data", '{"n": 1}', "--timeout", "120"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise ResultTimeout(f"the command was not accepted: {done.stdout.strip()} {done.stderr.strip()[-300:]}")


def wait_projected(pg_dsn: str, namespace: str, timeout_s: float = 120) -> None:
    """Wait until the documents projection holds the document."""
    database = Database(pg_dsn, "bench idle")
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                row = database.fetchone(f'SELECT count(*) FROM "{namespace}__documents".documents')
                if row and row[0]:
                    return
            except LogError:
                pass  # the table is not there yet
            if time.monotonic() > deadline:
                raise ResultTimeout(f"the document was not projected within {timeout_s:.0f} s")
            time.sleep(0.2)
    finally:
        database.close()


def watch(
    name: str,
    seconds: float,
    processes: dict[str, psutil.Process],
    sleeper: psutil.Process,
    count: Counter,
    baseline: Callable[[], int],
) -> IdleFigures:
    """The records and CPU of ``seconds`` of idling."""
    everyone = {**processes, "": sleeper}
    records, raw, cpu = count(), baseline(), {k: cpu_s(p) for k, p in everyone.items()}
    started_at = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started_at
    share = {k: 100 * (cpu_s(p) - cpu[k]) / elapsed for k, p in everyone.items()}
    after = count()
    appended = {topic: after[topic] - records[topic] for topic in records}
    baseline_cpu = share.pop("")
    return IdleFigures(name, seconds, appended, baseline() - raw, share, baseline_cpu)


def cpu_s(process: psutil.Process) -> float:
    """User plus system CPU seconds ``process`` used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


@contextmanager
def counters(settings: Settings, pg_dsn: str) -> Iterator[tuple[Counter, Callable[[], int]]]:
    """How many records each topic (or table) of the namespace holds, and the baseline's (created now)."""
    if settings.kafka_bootstrap:
        client = kafka_connect(settings)(settings.kafka_bootstrap)
        try:
            yield kafka_counters(client, settings.namespace)
        finally:
            client.close()
        return
    database = Database(pg_dsn, "bench idle")
    try:
        yield embedded_counters(database, settings.namespace)
    finally:
        database.close()


def kafka_counters(client: KafkaClient, namespace: str) -> tuple[Counter, Callable[[], int]]:
    """Sums of high watermarks (every record appended moves one, a marker too)."""
    topics = Topics.of(namespace)
    names = [topics.commands, topics.events, topics.results, topics.dlq]
    baseline_topic = f"{namespace}.{BASELINE}"
    client.ensure_topics({baseline_topic: {}}, PARTITIONS)

    def total(topic: str) -> int:
        return sum(client.high_watermarks(topic, range(PARTITIONS)).values())

    def appended() -> dict[str, int]:
        return {topic.removeprefix(f"{namespace}."): total(topic) for topic in names}

    return appended, lambda: total(baseline_topic)


def embedded_counters(database: Database, namespace: str) -> tuple[Counter, Callable[[], int]]:
    """Next offsets and sequence numbers of the embedded log's and bus's tables (every row appended moves one)."""
    s, baseline_table = f'"{namespace}"', BASELINE.replace("-", "_")
    database.execute(f"CREATE TABLE {s}.{baseline_table} (n bigserial PRIMARY KEY)")
    queries = {
        "commands": f"SELECT sum(next_offset) FROM {s}.command_partitions",
        "events": f"SELECT sum(next_offset) FROM {s}.partitions",
        "results": f"SELECT coalesce(max(seq), 0) FROM {s}.results",
        "dead_letters": f"SELECT coalesce(max(seq), 0) FROM {s}.dead_letters",
    }

    def one(query: str) -> int:
        row = database.fetchone(query)
        return int(row[0]) if row and row[0] is not None else 0

    return (lambda: {table: one(q) for table, q in queries.items()}), (
        lambda: one(f"SELECT count(*) FROM {s}.{baseline_table}")
    )
