"""``syncbackbone bench sync``: the sync protocol over real HTTP (uvicorn on loopback).

1. Pull: N changes (default 10,000) of one collection, page by page (1,000 a page),
   once per content coding (identity, gzip, zstd): wall time and bytes on the wire.
2. Push: 50 SDK clients (each its own SQLite file) edit 20 shared documents of a
   ``merge`` collection while offline, then push at once: mutations/s, and the
   conflict rate (the share of mutations merged or rejected).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx

from ...client import SyncClient, SyncReport
from ...domain.documents import DocumentCreated, aggregate_id
from ...domain.names import qualified
from ...domain.records import EventMeta
from ..app.auth import issue_token
from ..app.read_side import ReadSide
from ..bootstrap import Backbone, auth_secret, bootstrap
from ..common.progress import Progress
from ..http.sync_routes import encoders
from ..http.thread import gateway_in_thread
from ..postgres.database import drop_namespace
from ..settings import load_settings

FEED, HOT = "feed", "hot"
TENANT = "bench"
POLICIES = {HOT: {"policy": "merge", "fallback": "client", "fields": {"n": "sum"}}, "*": "lww"}
CLIENTS, EDITS_PER_CLIENT, HOT_DOCS = 50, 40, 20


def run_sync_bench(changes: int, only: str | None) -> int:
    """Run the benchmark and print the figures."""
    from .bench import kafka_bootstrap

    broker = kafka_bootstrap() if only == "kafka" else nullcontext(None)
    with broker as kafka:
        settings = load_settings(kafka_bootstrap=kafka, namespace=f"bench_{uuid.uuid4().hex[:8]}", policies=POLICIES)
        backbone = bootstrap(settings)
        side = backbone.read_side()
        try:
            with backbone.running_processor(), side.running(), gateway_in_thread(backbone, side) as url:
                pulls = bench_pull(backbone, side, url, changes)
                pushes = {
                    f"{HOT_DOCS} shared documents": bench_push(backbone, side, url, shared=True),
                    "documents of their own": bench_push(backbone, side, url, shared=False),
                }
        finally:
            side.close()
            drop_namespace(backbone.pg_dsn, settings.namespace)
            backbone.close()
    print_figures("kafka log (Tansu)" if kafka else "embedded log (PostgreSQL)", changes, pulls, pushes)
    return 0


def seed(backbone: Backbone, count: int) -> None:
    progress = Progress("seed changes", count, unit="events")
    for start in range(0, count, 2000):
        events = [
            backbone.codec.new_event(
                aggregate_id(qualified(TENANT, FEED), f"d{i:06d}"),
                1,
                DocumentCreated({"title": f"document {i}", "n": i, "tags": ["sync", "bench"], "text": "x" * 40}),
                EventMeta(causation_id=f"seed:{i}", actor="bench"),
            )
            for i in range(start, min(count, start + 2000))
        ]
        backbone.log.append(events)
        progress.advance(len(events))
    progress.done()


def wait_for_feed(side: ReadSide, count: int) -> None:
    progress = Progress("project changes", count, unit="changes")
    position = 0
    while position < count:
        rows = side.queries.changes(qualified(TENANT, FEED), position, 1000)
        position = rows[-1]["position"] if rows else position
        progress.done_count = position
        progress.advance(0)
        if not rows:
            time.sleep(0.05)
    progress.done()


def bench_pull(backbone: Backbone, side: ReadSide, url: str, count: int) -> dict[str, tuple[float, int, int]]:
    """Per content coding: (seconds, bytes on the wire, bytes decoded) to pull every change."""
    seed(backbone, count)
    wait_for_feed(side, count)
    figures = {}
    for coding in ["identity", *encoders()]:
        headers = {"accept-encoding": coding, "authorization": f"Bearer {token(backbone, 'puller')}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            figures[coding] = pull_everything(http, count)
    return figures


def pull_everything(http: httpx.Client, count: int) -> tuple[float, int, int]:
    cursor, wire, decoded, got = None, 0, 0, 0
    started = time.perf_counter()
    while got < count:
        params: dict[str, Any] = {"collections": FEED, "limit": 1000} | ({"cursor": cursor} if cursor else {})
        response = http.get("/sync/pull", params=params)
        response.raise_for_status()
        page = response.json()
        wire, decoded = wire + response.num_bytes_downloaded, decoded + len(response.content)
        got, cursor = got + len(page["changes"]), page["cursor"]
        if not page["more"]:
            break
    return time.perf_counter() - started, wire, decoded


Push = tuple[int, float, dict[str, int]]


def token(backbone: Backbone, subject: str) -> str:
    """A bench client's token, signed with the gateway's own secret."""
    return issue_token(auth_secret(backbone.settings), subject, TENANT, ["read", "write"])


def bench_push(backbone: Backbone, side: ReadSide, url: str, shared: bool) -> Push:
    """(mutations, seconds, outcomes) for 50 clients pushing their offline edits at once: all on
    the same 20 documents (``shared``), or each on documents of its own."""
    collection = HOT if shared else f"{HOT}-own"
    with tempfile.TemporaryDirectory() as folder:
        names = [f"b{i}-{shared}" for i in range(CLIENTS)]
        clients = [
            SyncClient(Path(folder) / f"c{i}.db", url, [collection], name, token=token(backbone, name))
            for i, name in enumerate(names)
        ]
        try:
            if shared:
                prepare_shared(side, clients)
            for i, client in enumerate(clients):
                for k in range(EDITS_PER_CLIENT):
                    doc_id = f"d{(i + k) % HOT_DOCS}" if shared else f"c{i}-d{k % 4}"
                    client.put(collection, doc_id, {"n": k, "title": f"by {i}"})
            progress = Progress(f"push ({'shared' if shared else 'own'} documents)", CLIENTS, unit="clients")
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                reports = list(pool.map(lambda c: pushed(c, progress), clients))
            elapsed = time.perf_counter() - started
            progress.done()
        finally:
            for client in clients:
                client.close()
    totals: dict[str, int] = {}
    for report in reports:
        for status, n in report.statuses.items():
            totals[status] = totals.get(status, 0) + n
    return sum(r.pushed for r in reports), elapsed, totals


def pushed(client: SyncClient, progress: Progress) -> SyncReport:
    report = client.push()
    progress.advance()
    return report


def prepare_shared(side: ReadSide, clients: list[SyncClient]) -> None:
    """The shared documents created and pulled by every client, so their edits are concurrent."""
    for i in range(HOT_DOCS):
        clients[0].put(HOT, f"d{i}", {"n": 0, "title": "start"})
    clients[0].sync_once()
    while len(side.queries.changes(qualified(TENANT, HOT), 0, 1000)) < HOT_DOCS:
        time.sleep(0.02)
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda c: c.pull(), clients))


def print_figures(log: str, count: int, pulls: dict[str, tuple[float, int, int]], pushes: dict[str, Push]) -> None:
    print(f"\n== sync on the {log}, over HTTP on loopback")
    print(f"pull {count:,} changes (pages of 1,000):")
    for coding, (seconds, wire, decoded) in pulls.items():
        ratio = decoded / wire if wire else 0
        rate = count / seconds
        print(f"  {coding:<8} {seconds:6.2f} s  {wire / 1e6:7.2f} MB on the wire  ({ratio:4.1f}x)  {rate:,.0f}/s")
    for label, (mutations, seconds, totals) in pushes.items():
        conflicts = (totals.get("merged", 0) + totals.get("rejected", 0)) / max(mutations, 1)
        print(f"push: {CLIENTS} concurrent clients, {mutations:,} mutations on {label} (merge)")
        rate = mutations / seconds
        print(f"  {rate:,.0f} mutations/s ({seconds:.2f} s); outcomes {totals}; conflict rate {conflicts:.0%}")
    sys.stdout.flush()
