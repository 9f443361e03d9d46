"""Pushes at command speed, SDK side: applied results carry no state, the SDK folds its own applied
mutations into its replica (so a second counter increment before the pull brings the first back
is not lost), and a pipelined outbox keeps every document's mutations in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncbackbone.client.outbox import PUSH_BATCH

from .harness import SyncServer, assert_converged, new_client, sync_server, sync_until_quiet

POLICY = {"policy": "crdt", "fields": {"likes": "counter"}}


@pytest.fixture(scope="module")
def server(pg_dsn: str) -> Iterator[SyncServer]:
    with sync_server(pg_dsn, POLICY) as s:
        yield s


def test_an_applied_result_carries_no_state_and_a_merged_or_rejected_one_does(server: SyncServer) -> None:
    create = {"seq": 1, "collection": "raw", "id": "r", "op": "create", "data": {"v": 1}}
    again = {"seq": 2, "collection": "raw", "id": "r", "op": "create", "data": {"v": 2}}

    applied, rejected = (
        server.http.post("/sync/push", json={"client": "raw-1", "mutations": [m]}).json()["results"][0]
        for m in (create, again)
    )

    assert (applied["status"], applied["state"]) == ("applied", None)
    assert rejected["status"] == "rejected" and rejected["state"]["version"] == 1


def test_a_second_increment_before_the_pull_brings_the_first_back_is_not_lost(
    server: SyncServer, tmp_path: Path
) -> None:
    alice, bob = (new_client(tmp_path, name, server.http, "boards") for name in ("alice", "bob"))
    try:
        alice.put("boards", "b1", {"title": "t"})
        alice.push()
        alice.increment("boards", "b1", "likes")
        alice.push()  # applied: no state comes back, and no pull ran
        alice.increment("boards", "b1", "likes")
        alice.push()

        assert alice.store.document("boards", "b1").version == 3 and alice.get("boards", "b1") == {
            "title": "t",
            "likes": 2,
        }
        sync_until_quiet(server, [alice, bob])
        assert bob.get("boards", "b1") == {"title": "t", "likes": 2}
        assert_converged(server, "boards", [alice, bob])
    finally:
        alice.close()
        bob.close()


def test_a_pipelined_outbox_keeps_each_documents_mutations_in_order_and_folds_them_without_a_pull(
    server: SyncServer, tmp_path: Path
) -> None:
    carol = new_client(tmp_path, "carol", server.http, "lists")
    try:
        edits = {"a": PUSH_BATCH + 50, "b": 100, "c": 100}  # a fills the first batch; b and c go while it flies
        for doc_id, count in edits.items():
            carol.put("lists", doc_id, {"n": 0})
            for n in range(1, count):
                carol.patch("lists", doc_id, {"n": n, f"k{n % 7}": n})

        report = carol.push()

        assert report.statuses == {"applied": sum(edits.values())} and carol.store.pending() == []
        for doc_id, count in edits.items():
            causes = [e.event.meta.causation_id or "" for e in server.events("lists", [doc_id])]
            seqs = [int(c.rpartition(":")[2]) for c in causes]
            assert len(seqs) == count and seqs == sorted(seqs), f"{doc_id} out of order"
            assert carol.store.document("lists", doc_id).version == count  # folded, not pulled
        snapshot = {d.id: (d.version, d.data) for d in carol.store.documents()}
        sync_until_quiet(server, [carol])
        assert {d.id: (d.version, d.data) for d in carol.store.documents()} == snapshot
        assert_converged(server, "lists", [carol])
    finally:
        carol.close()
