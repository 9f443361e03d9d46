"""No mutation blocks the outbox: what the server refuses for good goes to the client's dead letters
(shown by ``status()``, retried or dropped by hand) and the rest syncs on.

Against the real gateway: a stale edit on a ``strict`` collection, and NaN queued by an older
SDK while the background sync runs. Against a small recording server: a push refused as a whole
for one mutation (413, as for a body over the limit) and a refusal that is about the request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncbackbone.client import SyncClient
from syncbackbone.client.errors import RequestRefused
from syncbackbone.client.resilience import Backoff, CircuitBreaker

from .harness import SyncServer, new_client, sync_server
from .recorder import Recorder, Seen, recording_server


@pytest.fixture(scope="module")
def server(pg_dsn: str) -> Iterator[SyncServer]:
    with sync_server(pg_dsn, "strict") as s:
        yield s


def wait_for(condition: Callable[[], bool], what: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.02)


def seen_by(client: SyncClient, server: SyncServer, collection: str, doc_id: str) -> None:
    """Once the server's change feed has the document's latest version, ``client`` pulls it."""
    server.settled(collection, [doc_id])
    client.pull()


def test_a_stale_edit_refused_for_good_is_dead_lettered_and_can_be_retried_on_what_the_client_sees_now(
    server: SyncServer, tmp_path: Path
) -> None:
    collection = "refused"
    alice, bob = (
        new_client(tmp_path, "alice", server.http, collection),
        new_client(tmp_path, "bob", server.http, collection),
    )
    try:
        alice.put(collection, "d", {"title": "draft"})
        alice.sync_once()
        for client in (alice, bob):
            seen_by(client, server, collection, "d")
        alice.patch(collection, "d", {"title": "final"})
        alice.sync_once()
        stale = bob.patch(collection, "d", {"owner": "bob"})
        also_stale = bob.patch(collection, "d", {"tag": "x"})
        report = bob.sync_once()
        status = bob.status()

        assert report.statuses == {"rejected": 2} and report.dead_lettered == 2 and status["pending"] == 0
        assert status["dead_letters"]["count"] == 2 and status["outcomes"] == {"rejected": 2}
        assert [(d["seq"], d["op"], d["id"]) for d in status["dead_letters"]["latest"]] == [
            (stale, "patch", "d"),
            (also_stale, "patch", "d"),
        ]
        seen_by(bob, server, collection, "d")
        again = bob.retry_dead_letter(stale)
        bob.drop_dead_letter(also_stale)
        assert bob.dead_letters() == [] and bob.sync_once().statuses == {"applied": 1}
        server.settled(collection, ["d"])
        assert server.read_model(collection)["d"][1] == {"title": "final", "owner": "bob"}
        assert bob.store.outcomes()[again]["status"] == "applied"
    finally:
        alice.close()
        bob.close()


def test_nan_queued_by_an_older_sdk_is_dead_lettered_and_the_background_sync_goes_on(
    server: SyncServer, tmp_path: Path
) -> None:
    collection = "poisoned"
    client = new_client(tmp_path, "older", server.http, collection)
    with client.store.transaction() as db:  # what an SDK without the local check let into the outbox
        poison = {
            "seq": 1,
            "collection": collection,
            "id": "p",
            "op": "put",
            "base_version": 0,
            "data": {"x": math.nan},
        }
        client.store.enqueue(db, poison)
        client.store.set_meta(db, "next_seq", 2)
    client.start(idle_wait_s=0.05)
    try:
        client.put(collection, "ok", {"v": 1})
        wait_for(
            lambda: client.status()["pending"] == 0 and client.status()["outcomes"] == {"rejected": 1, "applied": 1},
            client.status,
        )
        status = client.status()

        assert status["syncing"] and status["dead_letters"]["latest"][0]["code"] == "unsendable"
        assert "mutation.data.x is nan" in status["dead_letters"]["latest"][0]["reason"]
        server.settled(collection, ["ok"])
        assert set(server.read_model(collection)) == {"ok"}
    finally:
        client.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as r:
        yield r


def too_large(request: Seen) -> int | None:
    """413 for a push that carries a mutation marked big, as a gateway with a body limit answers."""
    if request.path.startswith("/sync/push") and any(m["data"].get("big") for m in request.body["mutations"]):
        return 413
    return None


def test_a_push_refused_for_one_mutation_dead_letters_that_one_and_pushes_all_the_others(
    tmp_path: Path, recorder: Recorder
) -> None:
    recorder.refuse = too_large
    client = SyncClient(tmp_path / "c.db", recorder.url, ["notes"], "me", CircuitBreaker(50, 0.01), Backoff())
    try:
        seqs = [client.put("notes", f"n{i}", {"big": i == 5, "i": i}) for i in range(9)]
        report = client.sync_once()
        letters = client.dead_letters()
    finally:
        client.close()

    applied = sorted(
        m["seq"] for r in recorder.seen if r.path == "/sync/push" and not too_large(r) for m in r.body["mutations"]
    )
    assert applied == [s for s in seqs if s != seqs[5]]
    assert report.statuses == {"applied": 8, "rejected": 1} and report.dead_lettered == 1
    assert [(d["seq"], d["code"]) for d in letters] == [(seqs[5], "refused")] and "413" in letters[0]["reason"]


def forbidden_collection(request: Seen) -> int | None:
    """403 for a push that writes to ``secret``, as for a token without ``write:secret``."""
    if request.path.startswith("/sync/push") and any(m["collection"] == "secret" for m in request.body["mutations"]):
        return 403
    return None


def test_a_write_the_token_may_not_make_is_dead_lettered_and_the_other_collections_sync(
    tmp_path: Path, recorder: Recorder
) -> None:
    recorder.refuse = forbidden_collection
    client = SyncClient(tmp_path / "c.db", recorder.url, ["notes"], "me", CircuitBreaker(50, 0.01), Backoff())
    try:
        mine, secret, also_mine = (
            client.put("notes", "a", {}),
            client.put("secret", "b", {}),
            client.put("notes", "c", {}),
        )
        report = client.sync_once()
        letters = client.dead_letters()
    finally:
        client.close()

    assert report.statuses == {"applied": 2, "rejected": 1} and [d["seq"] for d in letters] == [secret]
    assert "403" in letters[0]["reason"] and mine < secret < also_mine


def test_a_403_for_every_push_is_about_the_token_and_the_outbox_waits(tmp_path: Path, recorder: Recorder) -> None:
    recorder.refuse = lambda request: 403 if request.path.startswith("/sync/push") else None
    client = SyncClient(tmp_path / "c.db", recorder.url, ["notes"], "me", CircuitBreaker(50, 0.01), Backoff())
    try:
        for i in range(5):
            client.put("notes", f"n{i}", {"v": i})
        with pytest.raises(RequestRefused, match="403"):
            client.sync_once()

        assert client.status()["pending"] == 5 and client.dead_letters() == []
        pushes = [r.body for r in recorder.seen if r.path.startswith("/sync/push")]
        assert any(p["mutations"] == [] for p in pushes)  # the empty push that told (batches go two at a time)
    finally:
        client.close()


@pytest.mark.parametrize("status", [404, 429])
def test_a_refusal_about_the_request_not_a_mutation_leaves_the_outbox_waiting(
    tmp_path: Path, recorder: Recorder, status: int
) -> None:
    recorder.refuse = lambda request: status if request.path.startswith("/sync/push") else None
    client = SyncClient(tmp_path / "c.db", recorder.url, ["notes"], "me", CircuitBreaker(50, 0.01), Backoff())
    try:
        client.put("notes", "n1", {"v": 1})
        with pytest.raises(RequestRefused, match=str(status)):
            client.sync_once()

        assert client.status()["pending"] == 1 and client.dead_letters() == []
    finally:
        client.close()
