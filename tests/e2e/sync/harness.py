"""A sync server in the test process (backbone, processor, projection runners, HTTP app) and checks.

The HTTP app is reached through FastAPI's TestClient, which is an ``httpx.Client``, so
the SDK talks to it exactly as it would over the network.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from support import TEST_AUTH_SECRET, bearer, drop_namespace

from syncbackbone.client import SyncClient
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.domain.names import qualified
from syncbackbone.domain.records import StoredEvent
from syncbackbone.infra.app.auth import Principal
from syncbackbone.infra.app.read_side import ReadSide
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.common.net import port_open
from syncbackbone.infra.http.app import create_app
from syncbackbone.infra.settings import load_settings

TENANT = "acme"
"""The tenant of the tests' sync clients (their token's); the server holds its collections as ``acme~...``."""


@dataclass
class SyncServer:
    """A running backbone with its read side and HTTP app."""

    backbone: Backbone
    side: ReadSide
    http: TestClient
    processor: ExitStack = field(default_factory=ExitStack)

    def start_processor(self) -> None:
        self.processor.enter_context(self.backbone.running_processor())

    def stop_processor(self) -> None:
        self.processor.close()

    def caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait until every projection has applied every event."""
        deadline = time.monotonic() + timeout_s
        while any(self.side.lag().values()):
            assert time.monotonic() < deadline, f"projections lag: {self.side.lag()}"
            time.sleep(0.02)

    def settled(self, collection: str, doc_ids: Sequence[str], timeout_s: float = 30.0) -> None:
        """Wait until the read models hold the latest version in the log of every document
        (projection lag alone is not enough on Tansu, whose high watermark can run behind)."""
        deadline = time.monotonic() + timeout_s
        while True:
            shown = {d: v for d, (v, _, _) in self.read_model(collection).items()}
            ids = sorted(set(doc_ids) | set(shown))  # the server may hold documents no client has pulled yet
            latest = {e.aggregate_id.partition("/")[2]: e.version for e in self.events(collection, ids)}
            fed = {c["id"]: c["version"] for c in self.side.queries.changes(qualified(TENANT, collection), 0, 1000)}
            if latest == shown and all(fed.get(d) == v for d, v in latest.items()):
                return
            assert time.monotonic() < deadline, f"read models behind the log: {latest} {shown} {fed}"
            time.sleep(0.02)

    def read_model(self, collection: str) -> dict[str, tuple[int, dict[str, Any], bool]]:
        """Every document of ``collection`` in the documents read model, deleted ones too."""
        found: dict[str, tuple[int, dict[str, Any], bool]] = {}
        after = None
        while True:
            page = self.side.queries.documents(
                qualified(TENANT, collection), after=after, limit=1000, include_deleted=True
            )
            found |= {d.id: (d.version, d.data, d.deleted) for d in page.items}
            if page.next_after is None:
                return found
            after = page.next_after

    def events(self, collection: str, doc_ids: Sequence[str]) -> list[StoredEvent]:
        stored = self.backbone.log.read_aggregates([f"{qualified(TENANT, collection)}/{d}" for d in doc_ids])
        return [event for events in stored.values() for event in events]


@contextmanager
def sync_server(pg_dsn: str, policy: Any, kafka: str | None = None, **overrides: Any) -> Iterator[SyncServer]:
    """A server whose every collection has ``policy``, in a fresh namespace dropped afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        kafka_bootstrap=kafka,
        pg_dsn=pg_dsn,
        namespace=namespace,
        policies={"*": policy},
        auth_secret=TEST_AUTH_SECRET,
        rate_limit="1000000/60s",
        **overrides,
    )
    backbone = bootstrap(settings)
    side = backbone.read_side()
    try:
        with side.running(), TestClient(create_app(backbone, side), headers=bearer("sync-tests", TENANT)) as http:
            server = SyncServer(backbone, side, http)
            server.start_processor()
            try:
                yield server
            finally:
                server.stop_processor()
    finally:
        side.close()
        backbone.close()
        drop_namespace(pg_dsn, namespace)


def new_client(folder: Path, name: str, http: Any, collection: str) -> SyncClient:
    """A client with fast retries (the defaults are for people, not tests)."""
    breaker = CircuitBreaker(threshold=50, reset_after_s=0.05)
    token = bearer(name, TENANT, "read write")["Authorization"].removeprefix("Bearer ")
    return SyncClient(folder / f"{name}.db", http, [collection], name, breaker, Backoff(0.005, 0.05), token=token)


def sync_until_quiet(server: SyncServer, clients: Sequence[SyncClient], max_rounds: int = 40) -> int:
    """Sync every client, round after round, until a whole round on settled read models moves nothing."""
    for round_ in range(1, max_rounds + 1):
        for collection in {name for c in clients for name in c.collections}:
            ids = {d.id for c in clients for d in c.store.documents() if d.collection == collection}
            ids |= {m["id"] for c in clients for m in c.store.pending() if m["collection"] == collection}
            server.settled(collection, sorted(ids))
        reports = [c.sync_once() for c in clients]
        if all(r.quiet for r in reports) and not any(c.store.pending() for c in clients):
            return round_
    raise AssertionError(f"not quiet after {max_rounds} rounds")


def assert_converged(server: SyncServer, collection: str, clients: Sequence[SyncClient]) -> None:
    """Every replica equals the server's read model, and shows it (nothing pending)."""
    server_docs = server.read_model(collection)
    for client in clients:
        replica = {d.id: (d.version, d.data, d.deleted) for d in client.store.documents()}
        assert replica == server_docs, f"{client.client_id} diverged: {replica} != {server_docs}"
        assert client.store.pending() == []


def assert_each_acknowledged_once(
    server: SyncServer, collection: str, clients: Sequence[SyncClient], made: dict[str, int]
) -> None:
    """Every mutation made got an outcome; each acknowledged one is in the log exactly once, none twice."""
    doc_ids = list(server.read_model(collection))
    per_command = Counter(e.event.meta.causation_id for e in server.events(collection, doc_ids))
    version_of = {e.event.meta.causation_id: e.version for e in server.events(collection, doc_ids)}
    assert max(per_command.values(), default=0) <= 1, "a command was applied twice"
    for client in clients:
        outcomes = client.store.outcomes()
        assert len(outcomes) == made[client.client_id], f"{client.client_id} lost a mutation"
        for seq, outcome in outcomes.items():
            prefix = Principal(client.client_id, TENANT, frozenset()).id_prefix  # its token's subject is its name
            command_id = f"{prefix}{client.client_id}:{seq}"
            if outcome["status"] in ("applied", "merged"):
                assert per_command[command_id] == 1, f"acknowledged {command_id} is not in the log"
                assert version_of[command_id] == outcome["version"]
            else:
                assert per_command[command_id] == 0, f"rejected {command_id} is in the log"


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    return proc
