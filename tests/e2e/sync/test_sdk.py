"""The client SDK on its own: background sync, the breaker against a dead server, local views."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncbackbone.client import SyncClient
from syncbackbone.client.errors import CircuitOpen, ServerUnavailable
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.domain.errors import CommandRejected
from syncbackbone.infra.common.net import free_port

from .harness import SyncServer, new_client, sync_server

CRDT = {"policy": "crdt", "fields": {"likes": "counter", "tags": "orset"}}


@pytest.fixture(scope="module")
def server(pg_dsn: str) -> Iterator[SyncServer]:
    with sync_server(pg_dsn, CRDT) as s:
        yield s


def test_clients_syncing_in_the_background_see_each_others_edits(server: SyncServer, tmp_path: Path) -> None:
    alice, bob = (new_client(tmp_path, name, server.http, "bg") for name in ("alice", "bob"))
    alice.start(idle_wait_s=0.2)
    bob.start(idle_wait_s=0.2)
    try:
        alice.put("bg", "post", {"title": "hi"})
        deadline = time.monotonic() + 20
        while bob.get("bg", "post") is None:
            assert time.monotonic() < deadline, bob.status()
            time.sleep(0.05)
        bob.increment("bg", "post", "likes", 2)
        alice.increment("bg", "post", "likes", 3)
        while (alice.get("bg", "post") or {}).get("likes") != 5 or (bob.get("bg", "post") or {}).get("likes") != 5:
            assert time.monotonic() < deadline, (alice.get("bg", "post"), bob.get("bg", "post"))
            time.sleep(0.05)
        assert alice.status()["pending"] == 0 and alice.status()["breaker"] == "closed"
    finally:
        alice.close()
        bob.close()


def test_a_dead_server_opens_the_breaker_and_edits_still_queue_locally(tmp_path: Path) -> None:
    breaker = CircuitBreaker(threshold=3, reset_after_s=60)
    client = SyncClient(tmp_path / "c.db", f"http://127.0.0.1:{free_port()}", ["x"], "lonely", breaker, Backoff())
    try:
        client.put("x", "a", {"v": 1})
        for _ in range(3):
            with pytest.raises(ServerUnavailable):
                client.sync_once()
        with pytest.raises(CircuitOpen):
            client.sync_once()
        client.patch("x", "a", {"v": 2})

        assert breaker.state == "open" and client.get("x", "a") == {"v": 2}
        assert client.status()["pending"] == 2 and client.status()["breaker"] == "open"
    finally:
        client.close()


def test_an_edit_that_cannot_apply_to_what_the_client_sees_is_refused_at_once(tmp_path: Path) -> None:
    client = SyncClient(tmp_path / "c.db", "http://127.0.0.1:9", ["x"], "strict-me")
    try:
        with pytest.raises(CommandRejected, match="cannot apply"):
            client.patch("x", "missing", {"v": 1})
        assert client.store.pending() == []
    finally:
        client.close()


def test_a_store_belongs_to_one_client(tmp_path: Path) -> None:
    SyncClient(tmp_path / "c.db", "http://127.0.0.1:9", ["x"], "first").close()

    with pytest.raises(CommandRejected, match="belongs to client 'first'"):
        SyncClient(tmp_path / "c.db", "http://127.0.0.1:9", ["x"], "second")
