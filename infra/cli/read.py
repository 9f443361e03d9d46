"""The read side's subcommands: query, rebuild, verify, and ``projections run|status|dlq``.

``cli.py`` adds them with ``add_read_commands`` and dispatches through ``READ_COMMANDS``.
On the embedded log a query first applies, in this process, the partitions that no
projection worker owns, so ``submit`` then ``query`` works without a server.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ...domain.errors import InvalidInput
from ...projections.maintenance import retry
from ..app.queries import parse_positions, parse_where
from ..app.read_side import ReadSide
from ..bootstrap import Backbone


def add_read_commands(sub: Any) -> None:
    """Add the read side's subcommands to the ``syncbackbone`` parser's subparsers."""
    query = sub.add_parser("query", help="read the read models (documents, changes, audit)")
    query.add_argument("what", choices=["documents", "changes", "audit"])
    query.add_argument("target", metavar="COLLECTION|AGGREGATE", help="a collection (or an aggregate id for audit)")
    query.add_argument("id", nargs="?", default=None, help="one document's id")
    query.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE", help="JSON field equality")
    query.add_argument("--after", default=None, help="cursor: the last id (documents) or position (changes) seen")
    query.add_argument("--limit", type=int, default=100)
    query.add_argument("--positions", default="", help="wait until the projection passed these (p:o,p:o)")
    query.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for --positions")
    query.add_argument("--json", action="store_true", help="print one JSON object")
    rebuild = sub.add_parser("rebuild", help="rebuild a projection from offset 0 and swap it in atomically")
    rebuild.add_argument("projection")
    verify = sub.add_parser("verify", help="replay the log into a scratch copy and report drift (exit 1 on drift)")
    verify.add_argument("projection", nargs="*", help="projections to verify (default: all)")
    verify.add_argument("--limit", type=int, default=20, help="drift lines to print per projection")
    proj = sub.add_parser("projections", help="run projection workers, show their status, manage their dead letters")
    proj.add_argument("action", choices=["run", "status", "dlq"])
    proj.add_argument("dlq_action", nargs="?", choices=["list", "retry", "skip"], default="list")
    proj.add_argument("--projection", action="append", default=[], help="limit to this projection (repeatable)")
    proj.add_argument("--aggregate", default=None, help="dead letters of this aggregate id (retry, skip)")
    proj.add_argument("--limit", type=int, default=50)
    proj.add_argument("--json", action="store_true")


def with_read_side(handler: Callable[[ReadSide, argparse.Namespace], int]) -> Callable[[Backbone, Any], int]:
    def run(backbone: Backbone, args: argparse.Namespace) -> int:
        side = backbone.read_side()
        try:
            return handler(side, args)
        finally:
            side.close()

    return run


def query(side: ReadSide, args: argparse.Namespace) -> int:
    projection = args.what
    side.catch_up([projection])
    side.queries.wait_for(parse_positions(args.positions), args.timeout, [projection])
    q = side.queries
    result: Any
    if args.what == "audit":
        result = {"aggregate_id": args.target, "entries": q.audit(args.target, args.limit)}
    elif args.what == "changes":
        result = {"items": q.changes(args.target, int(args.after or 0), args.limit)}
    elif args.id is not None:
        result = q.document(args.target, args.id).as_dict()
    else:
        result = q.documents(args.target, parse_where(args.where), args.after, args.limit).as_dict()
    print(json.dumps(result, default=str) if args.json else human(result))
    return 0


def human(result: dict[str, Any]) -> str:
    """One line per document, change or audit entry."""
    if "collection" in result:
        result = {"items": [result]}
    lines = []
    for item in result.get("items", result.get("entries", [])):
        head = " ".join(f"{k}={item[k]}" for k in ("collection", "id", "position", "version", "type") if k in item)
        tail = json.dumps(item.get("data", {k: item[k] for k in ("actor", "causation_id") if k in item}))
        lines.append(f"{head} {tail}")
    return "\n".join(lines) or "nothing found"


def rebuild_cmd(side: ReadSide, args: argparse.Namespace) -> int:
    read = side.rebuild(args.projection)
    print(f"rebuilt {args.projection} from {read:,} events and swapped it in")
    return 0


def verify_cmd(side: ReadSide, args: argparse.Namespace) -> int:
    drift = [line for name in side.names(args.projection) for line in side.verify([name])[: args.limit]]
    for line in drift:
        print(f"drift: {line}")
    print(f"{len(drift)} differences" if drift else "no drift: the read models equal a fresh replay")
    return 1 if drift else 0


def projections_cmd(side: ReadSide, args: argparse.Namespace) -> int:
    actions: dict[str, Callable[[ReadSide, argparse.Namespace], int]] = {
        "run": run_workers,
        "status": status,
        "list": dlq_list,
        "retry": dlq_retry,
        "skip": dlq_retry,
    }
    return actions[args.dlq_action if args.action == "dlq" else args.action](side, args)


def run_workers(side: ReadSide, args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    names = side.names(args.projection)
    print(f"applying {', '.join(names)} of {side.namespace}; Ctrl-C to stop", file=sys.stderr)
    try:
        side.run(stop, names)
    except KeyboardInterrupt:
        stop.set()
    return 0


def status(side: ReadSide, args: argparse.Namespace) -> int:
    lag = side.lag()
    for name in side.names(args.projection):
        store = side.store(name)
        row = {"projection": name, "lag": lag[name], "checkpoints": store.checkpoints()}
        row["open_dead_letters"] = len(store.dead_letters(10_000))
        print(json.dumps(row) if args.json else " ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def dlq_list(side: ReadSide, args: argparse.Namespace) -> int:
    shown = 0
    for name in side.names(args.projection):
        for entry in side.store(name).dead_letters(args.limit, aggregate_id=args.aggregate):
            d, shown = entry.dead, shown + 1
            row = {"projection": name, "seq": entry.seq, "aggregate_id": d.aggregate_id, "version": d.version}
            row |= {"partition": d.partition, "offset": d.offset, "error_type": d.error_type, "error": d.error}
            print(json.dumps(row) if args.json else f"{name} #{entry.seq} {d.aggregate_id} v{d.version}: {d.error}")
    if not shown and not args.json:
        print("no open dead letters")
    return 0


def dlq_retry(side: ReadSide, args: argparse.Namespace) -> int:
    if args.dlq_action == "skip" and not args.aggregate:
        raise InvalidInput("skip drops an event: name its aggregate with --aggregate")
    failed = 0
    for name in side.names(args.projection):
        store = side.store(name)
        aggregates = (
            [args.aggregate]
            if args.aggregate
            else sorted({e.dead.aggregate_id for e in store.dead_letters(args.limit)})
        )
        for agg in aggregates:
            out = retry(store, side.feed, agg, skip_first=args.dlq_action == "skip")
            failed += out.still_open > 0
            note = f"; still failing: {out.error}" if out.error else ""
            print(f"{name} {agg}: {out.skipped} skipped, {out.retried} applied, {out.still_open} open{note}")
    return 1 if failed else 0


READ_COMMANDS: dict[str, Callable[[Backbone, Any], int]] = {
    "query": with_read_side(query),
    "rebuild": with_read_side(rebuild_cmd),
    "verify": with_read_side(verify_cmd),
    "projections": with_read_side(projections_cmd),
}
