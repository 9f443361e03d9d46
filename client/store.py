"""The client's SQLite file: the server's documents as last seen, the outbox, outcomes, dead letters and settings.

Everything a sync step changes is written in one transaction (WAL journal, full sync),
so a client that stops at any point restarts with its outbox and replica consistent.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..domain.documents import Document

DocKey = tuple[str, str]
"""A document as (collection, id)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    deleted INTEGER NOT NULL, PRIMARY KEY (collection, id));
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, mutation TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY, status TEXT NOT NULL, code TEXT, reason TEXT, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL, mutation TEXT NOT NULL,
    code TEXT NOT NULL, reason TEXT NOT NULL);
"""


class LocalStore:
    """One client's durable state in a SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes of the block, or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, json.dumps(value)])

    def document(self, collection: str, doc_id: str) -> Document:
        """The server's document as last seen (version 0 when never seen)."""
        with self._lock:
            row = self._db.execute(
                "SELECT version, data, deleted FROM docs WHERE collection = ? AND id = ?", [collection, doc_id]
            ).fetchone()
        if row is None:
            return Document(collection, doc_id)
        return Document(collection, doc_id, row[0], json.loads(row[1]), bool(row[2]))

    def documents(self) -> list[Document]:
        with self._lock:
            rows = self._db.execute("SELECT collection, id, version, data, deleted FROM docs ORDER BY 1, 2").fetchall()
        return [Document(c, i, v, json.loads(d), bool(x)) for c, i, v, d, x in rows]

    def save_document(self, db: sqlite3.Connection, doc: Document) -> None:
        db.execute(
            "INSERT OR REPLACE INTO docs (collection, id, version, data, deleted) VALUES (?, ?, ?, ?, ?)",
            [doc.collection, doc.id, doc.version, json.dumps(doc.data), int(doc.deleted)],
        )

    def enqueue(self, db: sqlite3.Connection, mutation: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO outbox (seq, collection, id, mutation) VALUES (?, ?, ?, ?)",
            [mutation["seq"], mutation["collection"], mutation["id"], json.dumps(mutation)],
        )

    def pending(self, collection: str | None = None, doc_id: str | None = None, limit: int = 10_000) -> list[Any]:
        """Mutations not yet acknowledged, oldest first (of one document, when given)."""
        where, args = ("WHERE collection = ? AND id = ?", [collection, doc_id]) if collection else ("", [])
        with self._lock:
            rows = self._db.execute(f"SELECT mutation FROM outbox {where} ORDER BY seq LIMIT ?", [*args, limit])
            return [json.loads(r[0]) for r in rows.fetchall()]

    def pending_except(self, busy: Collection[DocKey], limit: int) -> list[Any]:
        """The oldest ``limit`` mutations not yet acknowledged of documents other than the ``busy`` ones."""
        skip = json.dumps(sorted(busy))
        with self._lock:
            rows = self._db.execute(
                "SELECT mutation FROM outbox WHERE (collection, id) NOT IN"
                " (SELECT value ->> 0, value ->> 1 FROM json_each(?)) ORDER BY seq LIMIT ?",
                [skip, limit],
            )
            return [json.loads(r[0]) for r in rows.fetchall()]

    def settle(self, db: sqlite3.Connection, seq: int, result: dict[str, Any]) -> None:
        """Take a mutation out of the outbox and keep its outcome."""
        db.execute("DELETE FROM outbox WHERE seq = ?", [seq])
        db.execute(
            "INSERT OR REPLACE INTO outcomes (seq, status, code, reason, version) VALUES (?, ?, ?, ?, ?)",
            [seq, result["status"], result.get("code"), result.get("reason"), result.get("version") or 0],
        )

    def retry_later(self, db: sqlite3.Connection, seq: int) -> None:
        db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [seq])

    def rebase(self, db: sqlite3.Connection, collection: str, doc_id: str, after_seq: int, version: int) -> None:
        """After mutation ``after_seq`` landed at ``version``, move the document's later pending mutations
        made on the version right before it onto ``version``: nothing else came in between, so they were
        made on top of it. One made on an older version keeps its base: the document changed meanwhile
        (e.g. a merge with another client's edit), and the server merges it against what it was made on,
        so a later put never deletes fields it did not see."""
        for mutation in self.pending(collection, doc_id):
            base = mutation.get("base_version")
            if mutation["seq"] > after_seq and base is not None and base == version - 1:
                mutation["base_version"] = version
                db.execute("UPDATE outbox SET mutation = ? WHERE seq = ?", [json.dumps(mutation), mutation["seq"]])

    def dead_letter(self, db: sqlite3.Connection, mutation: dict[str, Any], result: dict[str, Any]) -> None:
        """Settle a mutation the server refuses for good (a rejected ``result``), keeping it for a retry or a drop."""
        self.settle(db, mutation["seq"], result)
        code, reason = result.get("code") or "rejected", result.get("reason") or ""
        db.execute(
            "INSERT OR REPLACE INTO dead_letters (seq, collection, id, mutation, code, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [mutation["seq"], mutation["collection"], mutation["id"], json.dumps(mutation), code, reason],
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-lettered mutations, oldest first: ``{"seq", "collection", "id", "code", "reason", "mutation"}``."""
        with self._lock:
            rows = self._db.execute("SELECT seq, collection, id, code, reason, mutation FROM dead_letters ORDER BY seq")
            found = rows.fetchall()
        return [
            {"seq": r[0], "collection": r[1], "id": r[2], "code": r[3], "reason": r[4], "mutation": json.loads(r[5])}
            for r in found
        ]

    def forget_dead_letter(self, db: sqlite3.Connection, seq: int) -> bool:
        """Remove one dead letter; False if there was none with that seq."""
        return db.execute("DELETE FROM dead_letters WHERE seq = ?", [seq]).rowcount > 0

    def outcomes(self) -> dict[int, dict[str, Any]]:
        """Every acknowledged mutation's outcome, by seq."""
        with self._lock:
            rows = self._db.execute("SELECT seq, status, code, reason, version FROM outcomes ORDER BY seq").fetchall()
        return {r[0]: {"status": r[1], "code": r[2], "reason": r[3], "version": r[4]} for r in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
