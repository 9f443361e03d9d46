"""The replay side's subcommands: ``replay``, ``snapshot`` and ``audit export``.

``cli.py`` adds them with ``add_replay_commands`` and dispatches through ``REPLAY_COMMANDS``.
Problems found on the way (an unreadable event, an unusable snapshot) are printed as
``error:`` lines on stderr after the output, and the exit code is 1; bad input is exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...domain.documents import split_aggregate_id
from ...domain.errors import ConfigurationError
from ...projections.errors import NotFound
from ..app.audit_export import FORMATS, export
from ..app.replay import CHUNK_AGGREGATES, Replay, ReplayService, parse_time
from ..bootstrap import Backbone
from ..common.progress import Progress
from ..common.text import printable


def add_replay_commands(sub: Any) -> None:
    """Add ``replay``, ``snapshot`` and ``audit`` to the ``syncbackbone`` parser's subparsers."""
    replay = sub.add_parser("replay", help="an aggregate's state at a time or version, and its history up to it")
    replay.add_argument("aggregate_id", metavar="AGGREGATE-ID", help="collection/id, e.g. notes/n1")
    point = replay.add_mutually_exclusive_group()
    point.add_argument("--as-of", metavar="ISO-TIME", help="the state after the events recorded at or before it")
    point.add_argument("--to-version", type=int, metavar="N", help="the state after version N")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    snap = sub.add_parser("snapshot", help="take snapshots now (of every aggregate with new events, or those named)")
    snap.add_argument("aggregate_ids", nargs="*", metavar="AGGREGATE-ID")
    snap.add_argument("--verify", action="store_true", help="compare replays from snapshots and from zero instead")
    audit = sub.add_parser("audit", help="export the audit trail: who changed what, through which command, when")
    audit.add_argument("action", choices=["export"])
    audit.add_argument("--out", required=True, type=Path, metavar="FILE")
    audit.add_argument("--since", metavar="ISO-TIME", help="only events recorded at or after it")
    audit.add_argument("--until", metavar="ISO-TIME", help="only events recorded at or before it")
    audit.add_argument("--aggregate", metavar="AGGREGATE-ID", help="only this aggregate's events")
    audit.add_argument("--format", choices=FORMATS, default="jsonl")


def replay_cmd(backbone: Backbone, args: argparse.Namespace) -> int:
    as_of = parse_time(args.as_of, "--as-of") if args.as_of else None
    result = ReplayService.of(backbone).replay(args.aggregate_id, as_of, args.to_version)
    print(json.dumps(result.as_dict(), ensure_ascii=False) if args.json else printable(human(result)))
    return report(result.problems)


def human(result: Replay) -> str:
    """The history, one line per event, then the state and what the snapshot says."""
    lines = [f"{result.aggregate_id} at v{result.state.version}, as of {result.as_dict()['as_of']}", "history:"]
    for entry in result.history:
        row = entry.as_dict()
        change = json.dumps(row["change"], ensure_ascii=False) if row["error"] is None else f"! {row['error']}"
        who = f"actor={row['actor'] or '-'} command={row['command_id'] or '-'}"
        lines.append(f"  v{row['version']:<4} {row['recorded_at']}  {row['type']:<17} {who}  {change}")
    s = result.state
    status = "deleted" if s.deleted else "exists" if s.exists else "never created"
    lines.append(f"state: v{s.version} ({status}) {json.dumps(s.data, ensure_ascii=False, sort_keys=True)}")
    if result.snapshot:
        lines.append(f"snapshot: {result.snapshot}")
    return "\n".join(lines)


def report(problems: list[str]) -> int:
    for problem in problems:
        print(f"error: {printable(problem)}", file=sys.stderr)
    return 1 if problems else 0


def snapshot_cmd(backbone: Backbone, args: argparse.Namespace) -> int:
    if not backbone.settings.snapshots:
        raise ConfigurationError("snapshots are off (SYNC_SNAPSHOTS=false); unset it to take or verify snapshots")
    for agg in args.aggregate_ids:
        split_aggregate_id(agg)
    service = ReplayService.of(backbone)
    ids = args.aggregate_ids or sorted(service.aggregates())
    if args.verify:
        drift = service.verify_snapshots(ids)
        print(f"{len(drift)} of {len(ids)} aggregates differ" if drift else f"no drift in {len(ids)} aggregates")
        return report(drift)
    progress, taken = Progress("snapshot", len(ids), unit="aggregates"), 0
    for start in range(0, len(ids), CHUNK_AGGREGATES):
        chunk = ids[start : start + CHUNK_AGGREGATES]
        taken += service.snapshots.take(chunk)
        progress.advance(len(chunk))
    progress.done()
    print(f"took {taken} snapshots of {len(ids)} aggregates; the others were current, empty or unreadable")
    return 0


def audit_cmd(backbone: Backbone, args: argparse.Namespace) -> int:
    since = parse_time(args.since, "--since") if args.since else None
    until = parse_time(args.until, "--until") if args.until else None
    service = ReplayService.of(backbone)
    if args.aggregate:
        split_aggregate_id(args.aggregate)
        if not backbone.log.read_aggregate(args.aggregate, 1, 1):
            raise NotFound(f"no events for aggregate {args.aggregate!r}: nothing was ever written to it")
    done = export(service.events(since, until, args.aggregate), args.out, args.format)
    print(f"exported {done.rows:,} events to {args.out}")
    if done.unreadable:
        print(f"error: {done.unreadable} events could not be read; see their 'error' column", file=sys.stderr)
    return 1 if done.unreadable else 0


REPLAY_COMMANDS: dict[str, Callable[[Backbone, Any], int]] = {
    "replay": replay_cmd,
    "snapshot": snapshot_cmd,
    "audit": audit_cmd,
}
