"""PostgreSQL for every adapter: one ``Database`` owns the pool, the connections and the translation of errors.

No psycopg error leaves this package: ``translate`` turns each one into ours
(``raise X(str(e)) from e``, prefixed with what was being done, passwords blanked out)::

    psycopg.Error
    ├── OperationalError, InterfaceError ─────────► LogUnavailable       the server cannot be reached or let
    │   (pool timeouts, a closed pool, deadlocks,                         us down: try again later
    │    cancelled statements, server shutdown)
    │   └── ProgramLimitExceeded ─────────────────► InvalidInput         a value too large to store
    ├── IntegrityError
    │   ├── UniqueViolation ──────────────────────► ConcurrencyConflict  the row is there already (e.g. an
    │   │                                                                 aggregate's version, G1)
    │   └── NotNullViolation, CheckViolation, ... ► InvalidInput         data a constraint refuses
    ├── DataError ────────────────────────────────► InvalidInput         data PostgreSQL refuses (e.g. a NUL
    │                                                                     in text or "\\u0000" in jsonb)
    └── anything else (ProgrammingError, ...) ────► LogError             the operation failed (e.g. its table
                                                                          was dropped)

Callers narrow further where they know more: a read-model session reports refused data
(InvalidInput, ConcurrencyConflict) as the projection's ChangeRejected.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ...domain.errors import ConcurrencyConflict, InvalidInput, LogError, LogUnavailable, SyncBackboneError

Conn = psycopg.Connection[Any]
Cursor = psycopg.Cursor[Any]

CONNECT_TIMEOUT_S = 10
"""How long a caller waits for a connection (a new one, or one of the pool) before LogUnavailable."""
RETRY_OPEN_S = 5.0
"""After the setup of a lazy database failed to reach PostgreSQL, how long calls fail at once instead of trying."""
REFUSED = (psycopg.errors.DataError, psycopg.errors.IntegrityError, psycopg.errors.ProgramLimitExceeded)
PASSWORDS = (
    (re.compile(r"(?i)(password\s*=\s*)('[^']*'|\S+)"), r"\1***"),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]*@"), r"\1***@"),
)


def redacted(text: str) -> str:
    """``text`` with the passwords of any DSN in it blanked out."""
    for pattern, blank in PASSWORDS:
        text = pattern.sub(blank, text)
    return text


def translate(e: psycopg.Error, what: str) -> SyncBackboneError:
    """Our error for the psycopg error ``e`` raised while doing ``what`` (see the tree above)."""
    if isinstance(e, psycopg.errors.UniqueViolation):
        return ConcurrencyConflict(redacted(f"{what}: {e.diag.message_detail or e}"))
    if isinstance(e, REFUSED):
        return InvalidInput(redacted(f"{what}: PostgreSQL refused the data: {type(e).__name__}: {primary(e)}"))
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError):
        return LogUnavailable(redacted(f"{what}: PostgreSQL is unavailable: {primary(e)}"))
    return LogError(redacted(f"{what}: {type(e).__name__}: {primary(e)}"))


def primary(e: psycopg.Error) -> str:
    """The error's first line only: PostgreSQL's DETAIL and CONTEXT may quote the data, which never goes in errors."""
    return (e.diag.message_primary or str(e)).splitlines()[0] if str(e) or e.diag.message_primary else type(e).__name__


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Re-raise any psycopg error of the block as ours (``translate``)."""
    try:
        yield
    except psycopg.Error as e:
        raise translate(e, what) from e


class Database:
    """One PostgreSQL database as an adapter uses it: a pool of autocommit connections (transactions are
    explicit), made on first use, after ``setup`` (e.g. creating tables) ran once on a connection of its own.

    The setup runs now, so a server that is not there fails the constructor at once; with ``lazy`` it
    runs on first use instead, and after a failed attempt calls fail at once for ``RETRY_OPEN_S``. ``dsn``
    may be a function (called until the database is opened). ``what`` names the user in error messages.
    """

    def __init__(
        self,
        dsn: str | Callable[[], str],
        what: str,
        max_size: int = 4,
        setup: Callable[[Conn], None] | None = None,
        lazy: bool = False,
    ) -> None:
        self.what, self._dsn, self._max_size, self._setup = what, dsn, max_size, setup
        self._pool: ConnectionPool[Conn] | None = None
        self._lock = threading.Lock()
        self._closed, self._failed_at = False, -RETRY_OPEN_S
        if not lazy:
            with self._lock:
                self._set_up()

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """A pooled autocommit connection; psycopg errors of the block come out translated."""
        with translated(self.what), self._ready().connection() as conn:
            yield conn

    def fetchall(self, query: str, params: Sequence[Any] | None = None) -> list[Any]:
        """The rows of one statement run on a pooled connection."""
        with self.connection() as conn:
            return conn.execute(query.encode(), params).fetchall()

    def fetchone(self, query: str, params: Sequence[Any] | None = None) -> Any | None:
        """The first row of one statement run on a pooled connection, if any."""
        with self.connection() as conn:
            return conn.execute(query.encode(), params).fetchone()

    def fetchdicts(self, query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The rows of one statement run on a pooled connection, each as a dict by column name."""
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query.encode(), params).fetchall()

    def execute(self, query: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement on a pooled connection; how many rows it touched."""
        with self.connection() as conn:
            return conn.execute(query.encode(), params).rowcount

    def connect(self) -> Conn:
        """A new autocommit connection outside the pool, for the caller to keep (and close)."""
        with translated(self.what):
            return psycopg.connect(self._dsn_now(), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)

    def close(self) -> None:
        """Close the pool; later calls raise LogUnavailable."""
        with self._lock:
            self._closed, pool, self._pool = True, self._pool, None
        if pool is not None:
            pool.close()

    def _dsn_now(self) -> str:
        return self._dsn if isinstance(self._dsn, str) else self._dsn()

    def _ready(self) -> ConnectionPool[Conn]:
        """The pool, made on first use; LogUnavailable once closed."""
        with self._lock:
            if self._closed:
                raise LogUnavailable(f"{self.what} is closed")
            if self._pool is None:
                self._set_up()
                dsn = self._dsn = self._dsn_now()
                with translated(self.what):
                    self._pool = ConnectionPool(
                        dsn,
                        min_size=1,
                        max_size=self._max_size,
                        kwargs={"autocommit": True},
                        timeout=CONNECT_TIMEOUT_S,
                        open=True,
                    )
            return self._pool

    def _set_up(self) -> None:
        """Run the setup if it has not run yet (the lock held) and keep the DSN it used; fail fast for a while
        after a failure."""
        if self._setup is None:
            return
        if time.monotonic() - self._failed_at < RETRY_OPEN_S:
            raise LogUnavailable(f"{self.what}: PostgreSQL was unreachable just now")
        dsn = self._dsn_now()
        try:
            with translated(self.what), psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as c:
                self._setup(c)
        except LogUnavailable:
            self._failed_at = time.monotonic()
            raise
        self._dsn, self._setup = dsn, None


SMALL_WRITE = 64
"""Up to this many rows, a transaction may run as one pipeline (``pipelined``): its rows go as INSERTs sent with
the rest of the pipeline, with no round trip of their own; more go by COPY, which costs a few round trips but
about a tenth of the client's CPU per row."""


def pipelined(conn: Conn, rows: int) -> AbstractContextManager[Any]:
    """A pipeline on ``conn`` for a transaction writing at most ``SMALL_WRITE`` rows (else nothing): its
    statements go out together, and a reader of a result waits for everything sent before it."""
    return conn.pipeline() if rows <= SMALL_WRITE else nullcontext()


def write_rows(conn: Conn, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` into ``table`` (``columns``: their names, comma-separated): in a pipeline, INSERTs that go
    out with the rest of it; otherwise one COPY."""
    if not rows:
        return
    with conn.cursor() as cur:
        if conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF:
            values = ", ".join(["%s"] * len(rows[0]))
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({values})".encode(), rows)
            return
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN".encode()) as copy:
            for row in rows:
                copy.write_row(row)


def drop_namespace(dsn: str, namespace: str) -> None:
    """Drop the namespace's schema and its read models' schemas (``<ns>__<projection>``)."""
    what = f"dropping namespace {namespace!r}"
    with translated(what), Database(dsn, what).connect() as conn:
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s", [namespace, f"{namespace}\\_\\_%"]
        ).fetchall()
        for (schema,) in schemas:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())
