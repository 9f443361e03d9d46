"""The push half of ``syncbackbone bench sync``: 200 clients push their offline edits to a gateway process.

The gateway runs in its own process, as deployed (``syncbackbone serve --http``: processor,
projections and HTTP). This process drives the clients' wire protocol from one asyncio loop
(``httpx.AsyncClient``), so the load generator does not eat the server's cores. Each client
does on the wire what the SDK does: its own token; an outbox of offline edits, each made
against the version it last had; pushed in batches of up to ``PUSH_BATCH``, pipelined
(``PIPELINE_DEPTH`` in flight; a document with a mutation in flight sends nothing more).

Two mixes: documents of their own (4 per client: the server moves each edit onto the versions
the client's earlier ones made), and 20 documents of a ``merge`` collection that every client
edits (about 99 % conflicts, each merged against its base). The raw baseline in the same run
is the same mutations as ``ApplyMutation`` commands sent straight to the bus (one send per
client batch) and decided by the same processor: the command speed a push can approach.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...client.outbox import PIPELINE_DEPTH, PUSH_BATCH
from ...commands.models import ApplyMutation
from ...domain.hlc import HybridClock
from ...domain.names import qualified
from ..app.auth import issue_token
from ..bootstrap import bootstrap, resolve_pg_dsn
from ..common.net import free_port, port_open
from ..postgres.database import drop_namespace
from ..settings import Settings, load_settings

TENANT = "bench"
SHARED, OWN = "hot", "own"
POLICIES = {SHARED: {"policy": "merge", "fallback": "client", "fields": {"n": "sum"}}, "*": "lww"}
CLIENTS, EDITS_PER_CLIENT, SHARED_DOCS, OWN_DOCS = 200, 50, 20, 4
Mutation = dict[str, Any]


@dataclass
class Mix:
    """What one mix of the push bench measured."""

    label: str
    mutations: int
    seconds: float
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.mutations / self.seconds if self.seconds else 0.0

    @property
    def conflicts(self) -> float:
        return (self.outcomes.get("merged", 0) + self.outcomes.get("rejected", 0)) / max(self.mutations, 1)


def run_push_bench(kafka: str | None) -> list[Mix]:
    """Both mixes and the raw baseline, against a gateway process on a fresh namespace."""
    secret = uuid.uuid4().hex * 2
    settings = load_settings(
        kafka_bootstrap=kafka, namespace=f"bench_{uuid.uuid4().hex[:8]}", policies=POLICIES, auth_secret=secret
    )
    backbone = bootstrap(settings)
    try:
        with gateway_process(settings) as url:
            own = asyncio.run(push_all(url, secret, "own documents", edits(OWN, own_doc)))
            prepare_shared(url, secret)
            shared = asyncio.run(push_all(url, secret, f"{SHARED_DOCS} shared documents", edits(SHARED, shared_doc)))
            raw = raw_commands(backbone, edits(OWN, own_doc, tag="raw"))
    finally:
        backbone.close()
        drop_namespace(resolve_pg_dsn(settings), settings.namespace)
    return [own, shared, raw]


@contextmanager
def gateway_process(settings: Settings) -> Iterator[str]:
    """``syncbackbone serve --http`` on a free loopback port for ``settings``' namespace; its URL."""
    port = free_port()
    env = dict(os.environ, SYNC_NAMESPACE=settings.namespace, SYNC_PG_DSN=resolve_pg_dsn(settings))
    env |= {"SYNC_AUTH_SECRET": settings.auth_secret or "", "SYNC_RATE_LIMIT": "100000000/60s"}
    env["SYNC_POLICIES"] = json.dumps(settings.policies)
    if settings.kafka_bootstrap:
        env["SYNC_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway process did not start")
            time.sleep(0.1)
        print(f"gateway process {proc.pid} on port {port}", file=sys.stderr)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def own_doc(client: int, k: int) -> str:
    return f"c{client}-d{k % OWN_DOCS}"


def shared_doc(client: int, k: int) -> str:
    return f"d{(client + k) % SHARED_DOCS}"


def edits(collection: str, doc_of: Any, tag: str = "") -> dict[str, list[Mutation]]:
    """Each client's outbox: puts made offline, each against the version it last had (0, or 1 when shared)."""
    outboxes = {}
    for i in range(CLIENTS):
        name, clock = f"client-{tag}{i}", HybridClock(f"client-{tag}{i}")
        base = 1 if collection == SHARED else 0
        outboxes[name] = [
            {"seq": k + 1, "collection": collection, "id": doc_of(i, k), "op": "put", "base_version": base}
            | {"clock": str(clock.now()), "data": {"n": k, "title": f"by {i}", "text": "x" * 40}}
            for k in range(EDITS_PER_CLIENT)
        ]
    return outboxes


def token(secret: str, client: str) -> str:
    return issue_token(secret.encode(), client, TENANT, ["read", "write"], client)


async def push_all(url: str, secret: str, label: str, outboxes: dict[str, list[Mutation]]) -> Mix:
    """Every client pushes its outbox at once; the wall time until the last result is back."""
    limits = httpx.Limits(max_connections=CLIENTS * PIPELINE_DEPTH, max_keepalive_connections=CLIENTS * PIPELINE_DEPTH)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        counts = await asyncio.gather(*(push_outbox(http, secret, c, m) for c, m in outboxes.items()))
        elapsed = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for count in counts:
        for status, n in count.items():
            outcomes[status] = outcomes.get(status, 0) + n
    print(f"  {label}: {sum(outcomes.values()):,} results in {elapsed:.2f} s", file=sys.stderr)
    return Mix(label, sum(len(m) for m in outboxes.values()), elapsed, outcomes)


async def push_outbox(http: httpx.AsyncClient, secret: str, client: str, outbox: list[Mutation]) -> dict[str, int]:
    """One client's outbox pushed as the SDK does it: batches pipelined within per-document order."""
    headers = {"Authorization": f"Bearer {token(secret, client)}"}
    pending, flying, outcomes = list(outbox), set[asyncio.Task[list[Any]]](), dict[str, int]()
    busy: dict[asyncio.Task[list[Any]], set[str]] = {}
    while pending or flying:
        while pending and len(flying) < PIPELINE_DEPTH:
            held = set().union(*busy.values()) if busy else set()
            batch = [m for m in pending if m["id"] not in held][:PUSH_BATCH]
            if not batch:
                break
            pending = [m for m in pending if m not in batch]
            task = asyncio.create_task(push_batch(http, headers, client, batch))
            flying.add(task)
            busy[task] = {m["id"] for m in batch}
        done, flying = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            busy.pop(task)
            for result in task.result():
                outcomes[result["status"]] = outcomes.get(result["status"], 0) + 1
    return outcomes


async def push_batch(http: httpx.AsyncClient, headers: dict[str, str], client: str, batch: list[Mutation]) -> list[Any]:
    response = await http.post("/sync/push", json={"client": client, "mutations": batch}, headers=headers)
    response.raise_for_status()
    return list(response.json()["results"])


def prepare_shared(url: str, secret: str) -> None:
    """The shared documents created at version 1, so every client's edits of them are concurrent."""
    creates = [
        {"seq": i + 1, "collection": SHARED, "id": f"d{i}", "op": "put", "data": {"n": 0, "title": "start"}}
        for i in range(SHARED_DOCS)
    ]
    headers = {"Authorization": f"Bearer {token(secret, 'creator')}"}
    body = {"client": "creator", "mutations": creates}
    results = httpx.post(f"{url}/sync/push", json=body, headers=headers, timeout=60).json()["results"]
    assert [r["version"] for r in results] == [1] * SHARED_DOCS, results


def raw_commands(backbone: Any, outboxes: dict[str, list[Mutation]]) -> Mix:
    """The raw baseline: the same mutations as commands sent straight to the bus, a client batch per send."""
    batches = [
        [
            ApplyMutation(
                command_id=f"{client}:{m['seq']}",
                client_id=client,
                collection=qualified(TENANT, m["collection"]),
                id=m["id"],
                expected_version=m["base_version"],
                op=m["op"],
                clock=m["clock"],
                data=m["data"],
            )
            for m in outbox
        ]
        for client, outbox in outboxes.items()
    ]
    started = time.perf_counter()
    for batch in batches:
        backbone.bus.send(batch)
    ids = [c.command_id for batch in batches for c in batch]
    results = backbone.bus.wait_results(ids, 300)
    elapsed = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for result in results.values():
        outcomes[result.status] = outcomes.get(result.status, 0) + 1
    return Mix("raw: the same mutations as commands on the bus", len(ids), elapsed, outcomes)


def print_push_figures(log: str, mixes: list[Mix]) -> None:
    """The push figures, each mix with its rate and outcomes, then the raw baseline and the ratio."""
    print(f"push on the {log}: {CLIENTS} clients x {EDITS_PER_CLIENT} offline edits, over HTTP to a gateway process")
    print(f"  (driven from one asyncio process; batches of up to {PUSH_BATCH}, {PIPELINE_DEPTH} in flight)")
    raw = mixes[-1].rate
    for mix in mixes:
        ratio = f"; {mix.rate / raw:.2f} of raw" if raw and mix is not mixes[-1] else ""
        print(f"  {mix.label}: {mix.rate:,.0f} mutations/s ({mix.mutations:,} in {mix.seconds:.2f} s){ratio}")
        print(f"    outcomes {mix.outcomes}; conflict rate {mix.conflicts:.0%}")
    sys.stdout.flush()
