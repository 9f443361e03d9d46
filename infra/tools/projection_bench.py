"""``syncbackbone bench projections``: events/s folded into PostgreSQL against raw psycopg rates.

On a fresh namespace of the embedded log it appends N DocumentCreated events (one per
document), then rebuilds each built-in projection from offset 0 (read, decode, fold,
write, checkpoint: the whole path) and, in the same run on the same server, writes
the same N ``documents`` rows with plain psycopg: COPY into a keyed table, and a
multi-row ``INSERT ... ON CONFLICT DO UPDATE`` (1,000 rows a statement).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ...domain.documents import DocumentCreated, aggregate_id
from ...domain.records import EventMeta
from ..bootstrap import Backbone, bootstrap
from ..common.progress import Progress
from ..postgres.database import drop_namespace
from ..settings import load_settings

CHUNK = 5000
ROW_DDL = (
    "CREATE TABLE {t} (collection text, id text, data jsonb, version bigint, updated_at timestamptz,"
    " deleted boolean, PRIMARY KEY (collection, id))"
)


def document_data(i: int) -> dict[str, Any]:
    return {"n": i, "text": "x" * 64, "tags": ["a", "b"]}


def run_projection_bench(count: int) -> int:
    """Run the benchmark on ``count`` events and print the figures."""
    settings = load_settings(kafka_bootstrap=None, namespace=f"bench_{uuid.uuid4().hex[:8]}")
    backbone = bootstrap(settings)
    try:
        append_events(backbone, count)
        side = backbone.read_side()
        try:
            rates = {name: timed(lambda n=name: side.rebuild(n), count) for name in side.names()}
        finally:
            side.close()
        copy_rate = timed(lambda: raw_copy(backbone.pg_dsn, settings.namespace, count), count)
        upsert_rate = timed(lambda: raw_upsert(backbone.pg_dsn, settings.namespace, count), count)
    finally:
        drop_namespace(backbone.pg_dsn, settings.namespace)
        backbone.close()
    print_figures(count, rates, copy_rate, upsert_rate)
    return 0


def append_events(backbone: Backbone, count: int) -> None:
    progress = Progress("append", count, unit="events")
    for start in range(0, count, CHUNK):
        events = [
            backbone.codec.new_event(
                aggregate_id("bench", f"d{i}"),
                1,
                DocumentCreated(document_data(i)),
                EventMeta(causation_id=uuid.uuid4().hex, actor="bench"),
            )
            for i in range(start, min(count, start + CHUNK))
        ]
        backbone.log.append(events)
        progress.advance(len(events))
    progress.done()


def timed(work: Any, count: int) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def rows(count: int) -> Iterator[tuple[Any, ...]]:
    now = datetime.now(UTC)
    for i in range(count):
        yield ("bench", f"d{i}", Jsonb(document_data(i)), 1, now, False)


def raw_copy(dsn: str, namespace: str, count: int) -> None:
    table = f'"{namespace}".raw_copy'
    with psycopg.connect(dsn) as conn:
        conn.execute(ROW_DDL.format(t=table).encode())
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN".encode()) as copy:
            for row in rows(count):
                copy.write_row(row)


def raw_upsert(dsn: str, namespace: str, count: int, per_statement: int = 1000) -> None:
    table = f'"{namespace}".raw_upsert'
    with psycopg.connect(dsn) as conn:
        conn.execute(ROW_DDL.format(t=table).encode())
        all_rows = list(rows(count))
        for start in range(0, count, per_statement):
            part = all_rows[start : start + per_statement]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(part))
            conn.execute(
                f"INSERT INTO {table} VALUES {values} ON CONFLICT (collection, id) DO UPDATE SET data = EXCLUDED.data,"
                " version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, deleted = EXCLUDED.deleted".encode(),
                [v for row in part for v in row],
            )
            if (start // per_statement) % 5 == 4:
                conn.commit()


def print_figures(count: int, rates: dict[str, float], copy_rate: float, upsert_rate: float) -> None:
    print(file=sys.stderr)
    print(f"projections on the embedded log, {count:,} events (one new document each), rebuild from offset 0:")
    for name, rate in rates.items():
        ratios = f"{rate / upsert_rate:.2f}x raw upsert, {rate / copy_rate:.2f}x COPY"
        print(f"  {name:<10} {rate:>9,.0f} events/s  ({ratios})")
    print(f"  raw psycopg, same {count:,} documents rows: COPY {copy_rate:,.0f} rows/s,")
    print(f"  multi-row INSERT ... ON CONFLICT DO UPDATE (1,000 rows a statement) {upsert_rate:,.0f} rows/s")
