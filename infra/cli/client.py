"""``syncbackbone client ...``: the client SDK by hand, against a running ``serve --http``.

Edits (put, patch, delete) go to the local outbox, online or not; ``push`` sends it,
``pull`` fetches the change feed, ``sync`` does both, ``get`` shows a document as this
client sees it, ``status`` the outbox, cursor, outcomes and dead letters. ``dlq list``
shows the mutations the server refused for good, ``dlq retry SEQ|all`` queues them again
as new edits, ``dlq drop SEQ|all`` forgets them. ``--token`` (or ``SYNC_TOKEN``) is sent
as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ...client import SyncClient
from ...domain.errors import InvalidInput

ACTIONS = ["push", "pull", "sync", "status", "get", "put", "patch", "delete", "dlq"]
DLQ_ACTIONS = ("list", "retry", "drop")


def add_client_commands(sub: Any) -> None:
    """The ``client`` subcommand and its options."""
    client = sub.add_parser("client", help="the sync client SDK by hand: push, pull, status, dead letters, local edits")
    client.add_argument("action", choices=ACTIONS)
    client.add_argument(
        "collection", nargs="?", help="get/put/patch/delete: the document's collection; dlq: list, retry or drop"
    )
    client.add_argument("id", nargs="?", help="get/put/patch/delete: the document's id; dlq retry/drop: a SEQ, or all")
    client.add_argument("--data", default=None, help="put/patch: a JSON object")
    client.add_argument("--unset", action="append", default=[], help="patch: a field to remove")
    client.add_argument("--server", default=os.environ.get("SYNC_SERVER", "http://127.0.0.1:8080"))
    client.add_argument("--token", default=os.environ.get("SYNC_TOKEN"), help="bearer token (default: $SYNC_TOKEN)")
    client.add_argument("--db", default=os.environ.get("SYNC_CLIENT_DB", ".syncbackbone/client.db"))
    client.add_argument("--client-id", default=None, help="fixed on first use; default: a random id")
    client.add_argument("--collections", default="notes", help="subscribed collections, comma-separated")


def run_client(args: argparse.Namespace) -> int:
    collections = [c for c in args.collections.split(",") if c]
    client = SyncClient(Path(args.db), args.server, collections, args.client_id, token=args.token or None)
    try:
        return ACTION_HANDLERS[args.action](client, args)
    finally:
        client.close()


def push(client: SyncClient, args: argparse.Namespace) -> int:
    report = client.push()
    print(json.dumps({"pushed": report.pushed, "results": report.statuses}))
    return 0


def pull(client: SyncClient, args: argparse.Namespace) -> int:
    print(json.dumps({"pulled": client.pull()}))
    return 0


def sync(client: SyncClient, args: argparse.Namespace) -> int:
    report = client.sync_once()
    print(json.dumps({"pushed": report.pushed, "results": report.statuses, "pulled": report.pulled}))
    return 0


def status(client: SyncClient, args: argparse.Namespace) -> int:
    print(json.dumps(client.status(), indent=2))
    return 0


def document_args(args: argparse.Namespace) -> tuple[str, str]:
    if not args.collection or not args.id:
        raise InvalidInput(f"client {args.action} needs COLLECTION and ID")
    return args.collection, args.id


def data_of(args: argparse.Namespace) -> dict[str, Any]:
    try:
        data = json.loads(args.data or "{}")
    except json.JSONDecodeError as e:
        raise InvalidInput(f"--data is not valid JSON: {e.msg} at position {e.pos}") from e
    if not isinstance(data, dict):
        raise InvalidInput("--data must be a JSON object")
    return data


def get(client: SyncClient, args: argparse.Namespace) -> int:
    doc = client.get(*document_args(args))
    print(json.dumps(doc))
    return 0 if doc is not None else 1


def edit(client: SyncClient, args: argparse.Namespace) -> int:
    collection, doc_id = document_args(args)
    if args.action == "put":
        seq = client.put(collection, doc_id, data_of(args))
    elif args.action == "patch":
        seq = client.patch(collection, doc_id, data_of(args), args.unset)
    else:
        seq = client.delete(collection, doc_id)
    print(json.dumps({"queued": seq, "pending": len(client.store.pending())}))
    return 0


def dlq(client: SyncClient, args: argparse.Namespace) -> int:
    """``dlq list``, ``dlq retry SEQ|all``, ``dlq drop SEQ|all``."""
    verb = args.collection or "list"
    if verb not in DLQ_ACTIONS:
        raise InvalidInput(f"client dlq takes list, retry SEQ|all or drop SEQ|all, not {verb!r}")
    if verb == "list":
        print(json.dumps(client.dead_letters(), indent=2))
        return 0
    seqs = dead_letter_seqs(client, args.id, verb)
    if verb == "retry":
        print(json.dumps({"requeued": {seq: client.retry_dead_letter(seq) for seq in seqs}}))
    else:
        for seq in seqs:
            client.drop_dead_letter(seq)
        print(json.dumps({"dropped": seqs}))
    return 0


def dead_letter_seqs(client: SyncClient, which: str | None, verb: str) -> list[int]:
    """The seqs ``which`` names: one SEQ, or all of them."""
    if which == "all":
        return [letter["seq"] for letter in client.dead_letters()]
    if which is None or not which.isdigit():
        raise InvalidInput(f"client dlq {verb} needs the SEQ of a dead letter (see client dlq list), or all")
    return [int(which)]


ACTION_HANDLERS = {
    "push": push,
    "pull": pull,
    "sync": sync,
    "status": status,
    "get": get,
    "put": edit,
    "patch": edit,
    "delete": edit,
    "dlq": dlq,
}
