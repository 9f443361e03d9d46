"""SQL of the PostgreSQL read-model store: DDL from ``Table`` specs and the batch writes.

Each copy of a projection (live, or a rebuild/verify scratch copy) is one schema,
``"<ns>__<projection>"`` for the live one, holding the projection's tables and its
bookkeeping: ``checkpoints`` (next offset per partition), ``seen`` (last version
handled per aggregate), ``dead_letters`` and ``sequences`` (next position per group
of a sequenced table). Upserts and merges go through COPY into a per-connection
temporary staging table and one ``INSERT ... ON CONFLICT`` / ``UPDATE ... FROM``.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from ....domain.errors import ConfigurationError
from ....domain.names import checked_projection
from ....projections.changes import MergeJson, Row, Table, TableBatch
from ....projections.errors import ChangeRejected
from ..database import Conn

MAX_IDENTIFIER = 63

BOOKKEEPING_DDL = """
CREATE TABLE IF NOT EXISTS {s}.checkpoints ({next_offsets});
CREATE TABLE IF NOT EXISTS {s}.seen (
    aggregate_id text PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.dead_letters (
    seq bigserial PRIMARY KEY,
    partition integer NOT NULL,
    log_offset bigint NOT NULL,
    aggregate_id text NOT NULL,
    version bigint NOT NULL,
    type text NOT NULL,
    error_type text NOT NULL,
    error text NOT NULL,
    parked boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolution text,
    resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS dead_letters_open ON {s}.dead_letters (aggregate_id, seq) WHERE resolution IS NULL;
CREATE TABLE IF NOT EXISTS {s}.sequences (
    tbl text NOT NULL,
    grp text NOT NULL,
    next bigint NOT NULL,
    PRIMARY KEY (tbl, grp)
);
"""


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def copy_schema(namespace: str, projection: str, suffix: str = "") -> str:
    """The unquoted schema name of a copy of ``projection``; raise ConfigurationError if it cannot be one."""
    checked_projection(projection)
    name = f"{namespace}__{projection}" + (f"__{suffix}" if suffix else "")
    if len(name) > MAX_IDENTIFIER:
        raise ConfigurationError(f"schema {name!r} is longer than {MAX_IDENTIFIER} characters: use a shorter namespace")
    return name


def table_ddl(s: str, table: Table) -> list[str]:
    """CREATE statements of ``table`` and its indexes in schema ``s`` (quoted)."""
    columns = ", ".join(f"{q(n)} {t}" for n, t in table.columns)
    key = ", ".join(q(c) for c in table.key)
    statements = [f"CREATE TABLE IF NOT EXISTS {s}.{q(table.name)} ({columns}, PRIMARY KEY ({key}))"]
    for i, index in enumerate(table.indexes):
        statements.append(f"CREATE INDEX IF NOT EXISTS {q(f'{table.name}_i{i}')} ON {s}.{q(table.name)} {index}")
    return statements


_staged: weakref.WeakKeyDictionary[Conn, set[str]] = weakref.WeakKeyDictionary()


def staging(conn: Conn, columns: Sequence[tuple[str, str]]) -> str:
    """A temporary table with ``columns`` on this connection (created once), emptied at commit."""
    layout = ",".join(f"{n}:{t}" for n, t in columns)
    name = "stage_" + hashlib.sha1(layout.encode()).hexdigest()[:12]
    made = _staged.setdefault(conn, set())
    if name not in made:
        cols = ", ".join(f"{q(n)} {t}" for n, t in columns)
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols}) ON COMMIT DELETE ROWS".encode())
        made.add(name)
    return name


def forget_staging(conn: Conn) -> None:
    """Forget the staging tables of ``conn`` (after a rollback may have undone their creation)."""
    _staged.pop(conn, None)


def dumpable(value: Any, pg_type: str) -> Any:
    """``value`` as psycopg should send it for a column of ``pg_type``."""
    return Jsonb(value) if pg_type == "jsonb" and value is not None else value


def copy_rows(conn: Conn, target: str, columns: Sequence[tuple[str, str]], rows: Iterable[Row]) -> None:
    """COPY ``rows`` (values by column name) into ``target``."""
    names = ", ".join(q(n) for n, _ in columns)
    with conn.cursor() as cur, cur.copy(f"COPY {target} ({names}) FROM STDIN".encode()) as copy:
        for row in rows:
            copy.write_row([dumpable(row.get(n), t) for n, t in columns])


def write_batch(conn: Conn, s: str, batch: TableBatch) -> dict[str, int]:
    """Write one table's compacted changes; the last position taken per group of a sequenced table."""
    if batch.upserts:
        write_upserts(conn, s, batch.table, batch.upserts)
    if batch.merges:
        write_merges(conn, s, batch.table, batch.merges)
    return write_appends(conn, s, batch.table, batch.appends) if batch.appends else {}


def write_upserts(conn: Conn, s: str, table: Table, rows: Sequence[Row]) -> None:
    """Insert or overwrite whole rows: COPY into staging, then one INSERT ... ON CONFLICT."""
    stage = staging(conn, table.columns)
    copy_rows(conn, stage, table.columns, rows)
    names = ", ".join(q(n) for n in table.column_names)
    updates = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in table.column_names if c not in table.key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    key = ", ".join(q(c) for c in table.key)
    conn.execute(
        f"INSERT INTO {s}.{q(table.name)} ({names}) SELECT {names} FROM {stage} ON CONFLICT ({key}) {action}".encode()
    )
    conn.execute(f"DELETE FROM {stage}".encode())


def write_merges(conn: Conn, s: str, table: Table, merges: Sequence[MergeJson]) -> None:
    """Merge JSON keys into existing rows, one UPDATE per shape of merge; ChangeRejected if a row is missing."""
    types = dict(table.columns)
    shapes: dict[tuple[str, tuple[str, ...]], list[MergeJson]] = {}
    for m in merges:
        shapes.setdefault((m.column, tuple(sorted(m.row))), []).append(m)
    for (column, names), group in shapes.items():
        columns = [(n, types[n]) for n in names] + [("_set", "jsonb"), ("_unset", "text[]")]
        stage = staging(conn, columns)
        copy_rows(conn, stage, columns, ({**m.row, "_set": dict(m.set), "_unset": list(m.unset)} for m in group))
        sets = [f"{q(column)} = (t.{q(column)} - m._unset) || m._set"]
        sets += [f"{q(n)} = m.{q(n)}" for n in names if n not in table.key]
        match = " AND ".join(f"t.{q(k)} = m.{q(k)}" for k in table.key)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {s}.{q(table.name)} t SET {', '.join(sets)} FROM {stage} m WHERE {match}".encode())
            updated = cur.rowcount
        conn.execute(f"DELETE FROM {stage}".encode())
        if updated != len(group):
            raise ChangeRejected(f"{len(group) - updated} of {len(group)} merges into {table.name} found no row")


def write_appends(conn: Conn, s: str, table: Table, rows: Sequence[Row]) -> dict[str, int]:
    """COPY new rows into the table, numbering them per group first if the table has a sequence; the last
    position taken per group (none without a sequence)."""
    last: dict[str, int] = {}
    if table.sequence:
        group, position = table.sequence
        starts = reserve_positions(conn, s, table.name, Counter(str(r[group]) for r in rows))
        numbered = []
        for r in rows:
            g = str(r[group])
            numbered.append({**r, position: starts[g]})
            last[g], starts[g] = starts[g], starts[g] + 1
        rows = numbered
    copy_rows(conn, f"{s}.{q(table.name)}", table.columns, rows)
    return last


def reserve_positions(conn: Conn, s: str, table: str, counts: Counter[str]) -> dict[str, int]:
    """Take ``counts[g]`` positions of each group; the group rows stay locked until commit (commit order)."""
    groups = sorted(counts)
    conn.execute(
        f"INSERT INTO {s}.sequences (tbl, grp, next) SELECT %s, g, 1 FROM unnest(%s::text[]) AS g"
        " ORDER BY g ON CONFLICT DO NOTHING".encode(),
        [table, groups],
    )
    rows = conn.execute(
        f"SELECT grp, next FROM {s}.sequences WHERE tbl = %s AND grp = ANY(%s) ORDER BY grp FOR UPDATE".encode(),
        [table, groups],
    ).fetchall()
    conn.execute(
        f"UPDATE {s}.sequences q SET next = q.next + n.c FROM unnest(%s::text[], %s::bigint[]) AS n(g, c)"
        " WHERE q.tbl = %s AND q.grp = n.g".encode(),
        [groups, [counts[g] for g in groups], table],
    )
    return {str(g): int(n) for g, n in rows}
