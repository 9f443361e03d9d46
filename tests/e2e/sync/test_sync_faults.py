"""Sync under faults: responses lost on the way back, a client restarting with a full outbox,
a processor gone mid-push, and the whole server killed with SIGKILL mid-push.

After each, the clients sync until quiet and the usual checks hold: replicas equal the
read model, every acknowledged mutation is in the log once, none twice.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import bearer, user_env

from syncbackbone.client import SyncClient
from syncbackbone.client.errors import ServerUnavailable
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.infra.common.net import free_port

from .harness import (
    TENANT,
    SyncServer,
    assert_converged,
    assert_each_acknowledged_once,
    new_client,
    serve,
    sync_server,
    sync_until_quiet,
)

MERGE = {"policy": "merge", "fallback": "client", "fields": {"n": "sum"}}


@pytest.fixture(scope="module")
def server(pg_dsn: str) -> Iterator[SyncServer]:
    with sync_server(pg_dsn, MERGE, result_timeout_s=2) as s:
        yield s


class LosesResponses:
    """An HTTP client that delivers every request but loses the response of every other push."""

    def __init__(self, http: Any) -> None:
        self.http, self.pushes, self.lost = http, 0, 0

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)  # type: ignore[no-any-return]

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        response = self.http.post(url, **kwargs)
        self.pushes += 1
        if self.pushes % 2 == 1:
            self.lost += 1
            raise httpx.ReadError("connection reset after the request was sent")
        return response  # type: ignore[no-any-return]


def edits(client: SyncClient, collection: str, count: int, docs: int = 3) -> int:
    for i in range(count):
        client.put(collection, f"d{i % docs}", {"n": i, "by": client.client_id})
    return count


def test_a_push_whose_response_is_lost_is_retried_and_applied_once(server: SyncServer, tmp_path: Path) -> None:
    collection = "lost"
    flaky = LosesResponses(server.http)
    token = bearer("lossy", TENANT, "read write")["Authorization"].removeprefix("Bearer ")
    breaker, backoff = CircuitBreaker(50, 0.01), Backoff(0.001, 0.01)
    client = SyncClient(tmp_path / "a.db", flaky, [collection], "lossy", breaker, backoff, token=token)
    made = edits(client, collection, 12)
    with pytest.raises(ServerUnavailable):
        client.sync_once()
    sync_until_quiet(server, [client])

    assert flaky.lost >= 1 and len(client.store.outcomes()) == made
    assert_converged(server, collection, [client])
    assert_each_acknowledged_once(server, collection, [client], {"lossy": made})


def test_a_client_restarted_with_a_full_outbox_pushes_it_after_the_restart(server: SyncServer, tmp_path: Path) -> None:
    collection = "restart"
    first = new_client(tmp_path, "restarter", server.http, collection)
    made = edits(first, collection, 9)
    first.close()
    again = new_client(tmp_path, "restarter", server.http, collection)
    other = new_client(tmp_path, "other", server.http, collection)
    made_other = edits(other, collection, 4)

    assert len(again.store.pending()) == made and again.get(collection, "d0") == {"n": 6, "by": "restarter"}
    sync_until_quiet(server, [again, other])
    assert_converged(server, collection, [again, other])
    assert_each_acknowledged_once(server, collection, [again, other], {"restarter": made, "other": made_other})


def test_mutations_pushed_while_the_processor_is_down_are_kept_and_applied_once_it_is_back(
    server: SyncServer, tmp_path: Path
) -> None:
    collection = "down"
    client = new_client(tmp_path, "patient", server.http, collection)
    made = edits(client, collection, 5)
    server.stop_processor()
    try:
        report = client.sync_once()
    finally:
        server.start_processor()

    assert report.statuses == {"rejected": made} and len(client.store.pending()) == made
    sync_until_quiet(server, [client])
    assert_converged(server, collection, [client])
    assert_each_acknowledged_once(server, collection, [client], {"patient": made})


@pytest.mark.slow
def test_a_server_killed_mid_push_loses_no_acknowledged_mutation_and_doubles_none(
    server: SyncServer, pg_dsn: str, tmp_path: Path
) -> None:
    collection, port = "killed", free_port()
    env = user_env(pg_dsn, server.backbone.settings.namespace)
    env |= {"SYNC_POLICIES": '{"*": {"policy": "merge", "fields": {"n": "sum"}}}', "SYNC_RESULT_TIMEOUT_S": "3"}
    server.stop_processor()  # the process under test is the only processor
    proc = serve(env, port)
    try:
        clients = [new_client(tmp_path, f"k{i}", f"http://127.0.0.1:{port}", collection) for i in range(3)]
        made = {c.client_id: edits(c, collection, 300, docs=4) for c in clients}
        pushing = [threading.Thread(target=quietly, args=(c.sync_once,)) for c in clients]
        for thread in pushing:
            thread.start()
        while not server.events(collection, [f"d{i}" for i in range(4)]):  # the push is under way: kill it
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for thread in pushing:
            thread.join(30)
        assert any(c.store.pending() for c in clients), "the kill came after the push, not during it"
        proc = serve(env, port)
        for _ in range(60):
            for c in clients:
                quietly(c.sync_once)
            if not any(c.store.pending() for c in clients):
                break
        server.start_processor()
        sync_until_quiet(server, clients)
        assert_converged(server, collection, clients)
        assert_each_acknowledged_once(server, collection, clients, made)
    finally:
        proc.kill()
        proc.wait(10)


def quietly(step: Any) -> None:
    try:
        step()
    except ServerUnavailable:
        time.sleep(0.2)
