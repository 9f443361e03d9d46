"""The sync part of ``syncbackbone demo``: two clients edit one task offline and converge.

Alice and Bob each keep a SQLite replica and outbox, talk to the gateway over HTTP,
and edit the same task while offline. Tasks use the ``merge`` policy: fields changed
on one side merge; ``estimate``, changed on both, falls back to ``max``. Bob's push is
merged, the ConflictResolved event keeps both sides, and the audit trail shows it.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ...client import SyncClient
from ...domain.documents import ConflictResolved, aggregate_id
from ...domain.names import qualified
from ...projections.errors import NotFound
from ..app.auth import issue_token
from ..app.read_side import ReadSide
from ..bootstrap import Backbone, auth_secret
from ..http.thread import gateway_in_thread

COLLECTION = "tasks"
TENANT = "demo"
POLICY = {"policy": "merge", "fallback": "client", "fields": {"estimate": "max"}}


def show(label: str, client: SyncClient, doc_id: str) -> None:
    print(f"   {label:<22} {json.dumps(client.get(COLLECTION, doc_id), sort_keys=True)}")


def sync_tour(backbone: Backbone) -> None:
    """Run the two-clients part of the demo on ``backbone`` (its processor already running)."""
    side = backbone.read_side()
    try:
        with side.running(), gateway_in_thread(backbone, side) as url, tempfile.TemporaryDirectory() as folder:
            alice = demo_client(backbone, Path(folder), url, f"alice-{uuid.uuid4().hex[:4]}")
            bob = demo_client(backbone, Path(folder), url, f"bob-{uuid.uuid4().hex[:4]}")
            try:
                converge(backbone, side, alice, bob, f"task-{uuid.uuid4().hex[:6]}")
            finally:
                alice.close()
                bob.close()
    finally:
        side.close()


def demo_client(backbone: Backbone, folder: Path, url: str, name: str) -> SyncClient:
    """A client of the demo tenant, with a token signed by the gateway's own secret."""
    token = issue_token(auth_secret(backbone.settings), name, TENANT, ["read", "write"], client=name)
    return SyncClient(folder / f"{name.split('-')[0]}.db", url, [COLLECTION], name, token=token)


def converge(backbone: Backbone, side: ReadSide, alice: SyncClient, bob: SyncClient, doc_id: str) -> None:
    print(f"\n5. two offline clients edit one task ({COLLECTION}: merge policy; estimate, if both change it: max)")
    alice.put(COLLECTION, doc_id, {"title": "Write the report", "estimate": 3, "done": False})
    alice.sync_once()
    until(lambda: bob.pull() >= 0 and bob.get(COLLECTION, doc_id))
    show("both start from", bob, doc_id)
    alice.patch(COLLECTION, doc_id, {"title": "Write the sync report", "estimate": 5})
    bob.patch(COLLECTION, doc_id, {"estimate": 8, "done": True})
    show("alice, offline", alice, doc_id)
    show("bob, offline", bob, doc_id)
    first, second = alice.sync_once(), bob.sync_once()
    print(f"   reconnect: alice -> {first.statuses}, bob -> {second.statuses}")
    until(lambda: alice.pull() >= 0 and alice.store.document(COLLECTION, doc_id).version >= 3)
    show("alice, after sync", alice, doc_id)
    show("bob, after sync", bob, doc_id)
    same = alice.get(COLLECTION, doc_id) == bob.get(COLLECTION, doc_id)
    print(f"   converged: {same}")
    print_resolution(backbone, side, aggregate_id(qualified(TENANT, COLLECTION), doc_id))


def print_resolution(backbone: Backbone, side: ReadSide, agg: str) -> None:
    audit = until(lambda: audit_of(side, agg, 3)) or []
    print(f"\n6. the audit trail of {agg}")
    for entry in audit:
        print(
            f"   v{entry['version']} {entry['type']:<17} by {entry['client_id'] or '-':<11} ({entry['causation_id']})"
        )
    print("   the ConflictResolved event keeps both sides:")
    for _stored, event in backbone.history(agg):
        if isinstance(event, ConflictResolved):
            sides = {"base": event.base_version, "theirs": event.theirs, "ours": event.ours}
            for key, value in (sides | {"decisions": event.decisions, "outcome": event.set}).items():
                print(f"     {key:<10} {json.dumps(value, sort_keys=True)}")


def audit_of(side: ReadSide, agg: str, entries: int) -> list[dict[str, Any]] | None:
    try:
        found = side.queries.audit(agg)
    except NotFound:
        return None
    return found if len(found) >= entries else None


def until(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result
