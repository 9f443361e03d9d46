"""``syncbackbone bench sync``: the sync protocol over real HTTP (uvicorn on loopback).

1. Pull: N changes (default 10,000) of one collection, page by page (1,000 a page),
   once per content coding (identity, gzip, zstd): wall time and bytes on the wire.
2. Push (``push_bench``): 200 clients' offline edits pushed to a gateway process, on
   documents of their own and on 20 shared documents: mutations/s, the conflict rate
   (the share of mutations merged or rejected), and the raw baseline of the same run.
"""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from typing import Any

import httpx

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
from .push_bench import Mix, print_push_figures, run_push_bench

FEED = "feed"
TENANT = "bench"


def run_sync_bench(changes: int, only: str | None) -> int:
    """Run the benchmark and print the figures."""
    from .bench import kafka_bootstrap

    broker = kafka_bootstrap() if only == "kafka" else nullcontext(None)
    with broker as kafka:
        pulls = run_pull_bench(kafka, changes) if changes > 0 else {}  # --changes 0: the push half only
        pushes = run_push_bench(kafka)
    print_figures("kafka log (Tansu)" if kafka else "embedded log (PostgreSQL)", changes, pulls, pushes)
    return 0


def run_pull_bench(kafka: str | None, changes: int) -> dict[str, tuple[float, int, int]]:
    """The pull half, against a gateway in this process on a fresh namespace."""
    settings = load_settings(kafka_bootstrap=kafka, namespace=f"bench_{uuid.uuid4().hex[:8]}")
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        with backbone.running_processor(), side.running(), gateway_in_thread(backbone, side) as url:
            return bench_pull(backbone, side, url, changes)
    finally:
        side.close()
        drop_namespace(backbone.pg_dsn, settings.namespace)
        backbone.close()


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


def token(backbone: Backbone, subject: str) -> str:
    """A bench client's token, signed with the gateway's own secret."""
    return issue_token(auth_secret(backbone.settings), subject, TENANT, ["read", "write"])


def print_figures(log: str, count: int, pulls: dict[str, tuple[float, int, int]], pushes: list[Mix]) -> None:
    print(f"\n== sync on the {log}, over HTTP on loopback")
    if pulls:
        print(f"pull {count:,} changes (pages of 1,000):")
    for coding, (seconds, wire, decoded) in pulls.items():
        ratio = decoded / wire if wire else 0
        rate = count / seconds
        print(f"  {coding:<8} {seconds:6.2f} s  {wire / 1e6:7.2f} MB on the wire  ({ratio:4.1f}x)  {rate:,.0f}/s")
    print_push_figures(log, pushes)
