"""``syncbackbone bench sync --subscribers N [--streams M]``: N idle long-polls and M event streams of one
collection, all open on one gateway process (``serve --http``), while a writer commits changes to it.

Figures, each with its raw baseline from the same run:
- change to every subscriber: from the write (``POST /commands`` sent) until each subscriber
  has the change, p50/p99 over subscribers and changes, and until the last one, per change;
  raw: a bare asyncio server (``fanout.py``) answering the same N+M waiting requests at a
  trigger, from the trigger; and PostgreSQL's NOTIFY round trip on the same server;
- ``/health`` latency while they wait and while changes fan out; raw: the bare server's;
- gateway memory per subscriber: its RSS with everyone waiting minus before, over N+M; raw: the bare server's;
- SIGTERM with every subscriber open: how long the gateway takes to drain and exit.

The load generator is this process: one asyncio loop (uvloop) of bare HTTP/1.1 connections.
Thousands of sockets need open files: it raises its soft RLIMIT_NOFILE to the hard limit
(the gateway, its child, inherits it) and says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import psutil
import psycopg
import uvloop

from ...domain.errors import ConfigurationError
from ..app.auth import issue_token
from ..bootstrap import auth_secret, resolve_pg_dsn
from ..common.net import free_port, port_open
from ..postgres.database import drop_namespace
from ..settings import Settings, load_settings
from .fanout import Fanout, bare, held, measured
from .subscriber_client import HOST, Connection, connections, long_polls, recorder, streams

FEED, TENANT = "feed", "bench"


def run_subscribers_bench(subscribers: int, stream_count: int | None, only: str | None, rounds: int = 5) -> int:
    """Run the benchmark and print the figures."""
    from .bench import kafka_bootstrap

    streamed = subscribers // 10 if stream_count is None else stream_count
    files = open_files(2 * (subscribers + streamed) + 500)
    with kafka_bootstrap() if only == "kafka" else nullcontext(None) as kafka:
        settings = load_settings(kafka_bootstrap=kafka, namespace=f"bench_{uuid.uuid4().hex[:8]}")
        dsn = resolve_pg_dsn(settings)
        try:
            with gateway(settings, dsn, subscribers + streamed) as (proc, port):
                print(f"gateway up; opening {subscribers:,} long-polls and {streamed:,} streams", file=sys.stderr)
                figures = uvloop.run(fan_out_gateway(settings, proc, port, subscribers, streamed, rounds))
            print("the raw baseline: a bare asyncio server", file=sys.stderr)
            raw = bare(subscribers + streamed, rounds)
            notify = notify_round_trips(dsn, 50)
        finally:
            drop_namespace(dsn, settings.namespace)
    log = "kafka log (Tansu)" if kafka else "embedded log (PostgreSQL)"
    print_figures(log, subscribers, streamed, files, figures, raw, notify)
    return 0


def open_files(needed: int) -> int:
    """Raise this process's soft open-files limit to the hard one; ConfigurationError if that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(needed, soft) if hard == resource.RLIM_INFINITY else hard
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        raise ConfigurationError(f"{needed:,} open files are needed, the hard limit is {hard:,}: raise it (ulimit -Hn)")
    return wanted


@contextmanager
def gateway(settings: Settings, dsn: str, waits: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``serve --http`` on a free port (and that port), allowing ``waits`` waiting requests to one principal."""
    port = free_port()
    env = {**os.environ, "SYNC_PG_DSN": dsn, "SYNC_NAMESPACE": settings.namespace}
    env |= {"SYNC_MAX_STREAMS_PER_PRINCIPAL": str(waits), "SYNC_RATE_LIMIT": "1000000000/60s"}
    env |= {"SYNC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap} if settings.kafka_bootstrap else {}
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"{HOST}:{port}"]
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not port_open(HOST, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigurationError("the gateway (serve --http) did not start")
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def token(settings: Settings, subject: str, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(auth_secret(settings), subject, TENANT, scope.split())}"}


async def fan_out_gateway(
    settings: Settings, proc: subprocess.Popen[bytes], port: int, polls: int, streamed: int, rounds: int
) -> Fanout:
    """Open the subscribers on the gateway, write ``rounds`` changes, then stop it with SIGTERM."""
    reader, writer = token(settings, "subscriber", "read"), token(settings, "writer", "read write")
    probe = await Connection(HOST, port, reader).open()
    cursor = json.loads((await probe.request("GET", f"/sync/pull?collections={FEED}"))[1])["cursor"]
    pull = f"/sync/pull?collections={FEED}&wait=55&cursor=".__add__
    stream = f"/sync/stream?collections={FEED}&cursor=".__add__
    received: dict[str, list[float]] = {}

    async def subscribe(count: int) -> list[asyncio.Task[None]]:
        conns = await connections(port, count, reader)
        tasks = [asyncio.create_task(long_polls(c, pull, recorder(received), cursor)) for c in conns[:polls]]
        tasks += [asyncio.create_task(streams(c, stream, recorder(received), cursor)) for c in conns[polls:]]
        return await held(tasks, full)

    async def full() -> bool:  # every wait is held once one more is refused
        return (await probe.request("GET", pull(cursor).replace("wait=55", "wait=0.01")))[0] == 429

    async def write(change: str) -> object:  # on a connection of its own (an idle one is closed after 5 s)
        body = {"type": "PutDocument", "collection": FEED, "id": change, "data": {"n": 1}}
        conn = await Connection(HOST, port, writer).open()
        try:
            return await conn.request("POST", "/commands", body)
        finally:
            conn.close()

    figures, tasks = await measured(
        psutil.Process(proc.pid), port, polls + streamed, rounds, received, subscribe, write
    )
    figures.exit_s = await stopped(proc)
    await asyncio.gather(*tasks)
    return figures


async def stopped(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM the gateway; seconds until it exited."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 60)
    return time.perf_counter() - started


def notify_round_trips(dsn: str, count: int) -> list[float]:
    """Seconds from a NOTIFY on one connection until a LISTENing one has it, ``count`` times."""
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as sender:
        listener.execute("LISTEN bench_round_trip")
        times = []
        for i in range(count):
            started = time.perf_counter()
            sender.execute("SELECT pg_notify('bench_round_trip', %s)", [str(i)])
            next(listener.notifies(timeout=10, stop_after=1))
            times.append(time.perf_counter() - started)
    return times


def ms(values: list[float], q: float) -> str:
    """The ``q`` quantile of ``values`` in milliseconds."""
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.0f} ms" if ordered else "n/a"


def print_figures(
    log: str, polls: int, streamed: int, files: int, gateway: Fanout, bare: Fanout, notify: list[float]
) -> None:
    n = polls + streamed
    print(f"\n== {polls:,} idle long-polls + {streamed:,} SSE streams of one collection on one gateway process")
    print(f"   on the {log}; this process raised its open-files limit (RLIMIT_NOFILE) to {files:,}")
    for name, run in (("gateway", gateway), ("raw: bare asyncio server", bare)):
        print(f"{name}:")
        print(
            f"  change to each subscriber  p50 {ms(run.delivered, 0.5)}  p99 {ms(run.delivered, 0.99)}"
            f"  (to the last one: p50 {ms(run.last, 0.5)}, worst {ms(run.last, 1.0)}; missed {run.missed})"
        )
        print(f"  /health while waiting      p50 {ms(run.health_idle, 0.5)}  p99 {ms(run.health_idle, 0.99)}")
        print(f"  /health during fan-out     p50 {ms(run.health_busy, 0.5)}  p99 {ms(run.health_busy, 0.99)}")
        print(f"  memory per subscriber      {run.rss_per_subscriber / 1024:.1f} KB of RSS ({n:,} subscribers)")
        print(f"  CPU per subscriber         {run.cpu_per_subscriber * 1e6:.0f} µs a change (answer + next request)")
    print(f"raw: PostgreSQL NOTIFY round trip  p50 {ms(notify, 0.5)}  p99 {ms(notify, 0.99)}")
    if gateway.exit_s is not None:
        print(f"SIGTERM with every subscriber open: the gateway drained them and exited in {gateway.exit_s:.2f} s")
    print("targets: change to all p99 < 500 ms, /health p99 < 100 ms, < 20 KB per idle subscriber")
    sys.stdout.flush()
