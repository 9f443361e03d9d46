"""The ``syncbackbone`` command line: demo, stop-embedded, config, serve, submit, dlq, bench, query, rebuild,
verify, projections, replay, snapshot, audit.

Errors a user can fix are printed as one line naming what is wrong and what to
do, with exit code 2; no traceback reaches the user for their mistake.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...commands.models import COMMAND_TYPES, parse_command
from ...domain.errors import InvalidInput, SyncBackboneError
from ..bootstrap import Backbone, bootstrap
from ..settings import load_settings
from .client import add_client_commands, run_client
from .config import add_config_command, run_config
from .read import READ_COMMANDS, add_read_commands
from .replay import REPLAY_COMMANDS, add_replay_commands
from .token import add_token_command, run_token

SIMPLE_COMMANDS = {
    "demo": "submit commands on the embedded default and show events and state",
    "stop-embedded": "stop the embedded PostgreSQL server (kept running between commands; the next one restarts it)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncbackbone", description=__doc__)
    parser.add_argument("--partitions", type=int, help="partition count of topics created by this run")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name, text in SIMPLE_COMMANDS.items():
        sub.add_parser(name, help=text)
    serve_cmd = sub.add_parser("serve", help="run the command processor until stopped (Ctrl-C)")
    serve_cmd.add_argument(
        "--http", metavar="HOST:PORT", default=None, help="also run the projections and the HTTP gateway there"
    )
    serve_cmd.add_argument("--tls-cert", default=None, help="serve HTTPS with this certificate (PEM)")
    serve_cmd.add_argument("--tls-key", default=None, help="the certificate's private key (PEM)")
    submit = sub.add_parser("submit", help="submit one command and print its result")
    submit.add_argument("type", metavar="CommandType", help=f"one of {', '.join(COMMAND_TYPES)}")
    submit.add_argument("--collection", required=True)
    submit.add_argument("--id", required=True)
    submit.add_argument("--data", default=None, help="JSON object: the document, or the fields to set (patch)")
    submit.add_argument("--unset", action="append", default=[], help="field to remove (PatchDocument)")
    submit.add_argument("--expected-version", type=int, default=None)
    submit.add_argument("--command-id", default=None)
    submit.add_argument("--timeout", type=float, default=None, help="seconds to wait for the result")
    submit.add_argument("--json", action="store_true", help="print the result as one JSON object")
    dlq = sub.add_parser("dlq", help="inspect the dead-letter queue of the command bus")
    dlq.add_argument("action", choices=["list"])
    dlq.add_argument("--limit", type=int, default=50)
    dlq.add_argument("--json", action="store_true")
    add_bench_command(sub)
    add_read_commands(sub)
    add_replay_commands(sub)
    add_client_commands(sub)
    add_config_command(sub)
    add_token_command(sub)
    return parser


def add_bench_command(sub: Any) -> None:
    bench = sub.add_parser("bench", help="measure throughput and latency against raw baselines")
    bench.add_argument("what", choices=["commands", "projections", "recovery", "sync", "idle"])
    bench.add_argument("--count", type=int, default=20000, help="commands per run")
    bench.add_argument("--only", choices=["kafka", "embedded"], default=None)
    bench.add_argument("--events", type=int, default=100_000, help="history length (recovery)")
    bench.add_argument("--changes", type=int, default=10_000, help="changes to pull (sync)")
    bench.add_argument(
        "--subscribers", type=int, default=0, help="sync: N idle long-polls on one gateway while changes fan out"
    )
    bench.add_argument("--streams", type=int, default=None, help="sync --subscribers: M SSE streams too (N/10)")
    bench.add_argument("--seconds", type=float, default=60.0, help="how long the processes are watched idling (idle)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        quiet_driver_logs(bench=args.cmd == "bench")
    try:
        return run(args)
    except SyncBackboneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class QuietDriver(logging.Filter):
    """Drops kafka-python's event-loop timing warnings, and in a bench the fencing it causes on purpose."""

    def __init__(self, bench: bool) -> None:
        super().__init__()
        self.bench = bench

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kafka."):
            return True
        message = record.getMessage()
        timing = record.name == "kafka.net.selector" and "ran for" in message  # a busy 2-core box
        fencing = self.bench and "ProducerFenced" in message  # a bench's restart fences the old writers
        return not (timing or fencing)


def quiet_driver_logs(bench: bool) -> None:
    """Put ``QuietDriver`` on the root handlers (a filter on a logger would miss its children's records)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietDriver(bench))


def run(args: argparse.Namespace) -> int:
    if args.cmd == "client":
        return run_client(args)
    if args.cmd == "bench":
        return run_bench_command(args)
    overrides: dict[str, Any] = {"partitions": args.partitions} if args.partitions else {}
    if args.cmd == "config":
        return run_config(args, overrides)
    settings = load_settings(**overrides)
    if args.cmd == "demo":
        from ..tools.demo import run_demo

        return run_demo(settings)
    if args.cmd == "stop-embedded":
        return stop_embedded(settings.data_dir)
    if args.cmd == "token":
        return run_token(settings, args)
    backbone = bootstrap(settings)
    try:
        handler = {"serve": serve, "submit": submit, "dlq": dlq_list, **READ_COMMANDS, **REPLAY_COMMANDS}[args.cmd]
        return handler(backbone, args)
    finally:
        backbone.close()


def run_bench_command(args: argparse.Namespace) -> int:
    if args.what == "projections":
        from ..tools.projection_bench import run_projection_bench

        return run_projection_bench(args.count)
    if args.what == "sync":
        if args.subscribers > 0:
            from ..tools.subscribers_bench import run_subscribers_bench

            return run_subscribers_bench(args.subscribers, args.streams, args.only)
        from ..tools.sync_bench import run_sync_bench

        return run_sync_bench(args.changes, args.only)
    if args.what == "idle":
        from ..tools.idle_bench import run_idle_bench

        return run_idle_bench(args.seconds, args.only)
    if args.what == "recovery":
        from ..tools.recovery_bench import run_recovery_bench

        return run_recovery_bench(args.events, args.only)
    from ..tools.bench import run_bench

    return run_bench(args.count, args.only)


def stop_embedded(data_dir: Path) -> int:
    from ..runtime.processes import stop_embedded_pg

    stopped = stop_embedded_pg(data_dir)
    print(f"stopped the embedded PostgreSQL server in {data_dir}/" if stopped else f"none was running in {data_dir}/")
    return 0


def serve(backbone: Backbone, args: argparse.Namespace) -> int:
    if args.http:
        from ..http.app import serve_http

        return serve_http(backbone, args.http, tls_of(args))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    processor = backbone.processor()
    where = backbone.settings.kafka_bootstrap or "the embedded PostgreSQL log"
    print(f"processing {backbone.settings.namespace}.commands on {where}; Ctrl-C to stop", file=sys.stderr)
    if backbone.settings.snapshots:
        s = backbone.settings
        print(f"snapshots: every {s.snapshot_every} events, and every {s.snapshot_interval_s:g} s", file=sys.stderr)
    try:
        processor.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        processor.close()
    return 0


def tls_of(args: argparse.Namespace) -> tuple[str, str] | None:
    """The certificate and key of ``--tls-cert``/``--tls-key`` (both or neither), or InvalidInput."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InvalidInput("--tls-cert and --tls-key go together")
    for path in filter(None, (args.tls_cert, args.tls_key)):
        if not Path(path).is_file():
            raise InvalidInput(f"no such file: {path}")
    return (args.tls_cert, args.tls_key) if args.tls_cert else None


def submit(backbone: Backbone, args: argparse.Namespace) -> int:
    command = parse_command(args.type, submit_fields(args))
    if backbone.settings.embedded and not backbone.bus.processor_alive():
        with backbone.running_processor():  # nobody serves: process it here, then stop
            result = backbone.submit(command, args.timeout)
    else:
        result = backbone.submit(command, args.timeout)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        detail = f"version {result.version}" if result.status == "accepted" else result.reason
        print(f"{result.status}: {result.aggregate_id} {detail}")
    return 0 if result.status == "accepted" else 1


def submit_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"collection": args.collection, "id": args.id}
    if args.data is not None:
        try:
            fields["data"] = json.loads(args.data)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"--data is not valid JSON: {e.msg} at position {e.pos}") from e
    if args.unset:
        fields["unset"] = args.unset
    if args.expected_version is not None:
        fields["expected_version"] = args.expected_version
    if args.command_id:
        fields["command_id"] = args.command_id
    return fields


def dlq_list(backbone: Backbone, args: argparse.Namespace) -> int:
    letters = backbone.bus.dead_letters(args.limit)
    for d in letters:
        row = {
            "partition": d.partition,
            "offset": d.offset,
            "key": d.key,
            "error_type": d.error_type,
            "error": d.error,
            "value_bytes": len(d.value),
        }
        print(json.dumps(row) if args.json else f"p{d.partition}@{d.offset} {d.key} {d.error_type}: {d.error}")
    if not letters and not args.json:
        print("the dead-letter queue is empty")
    return 0

