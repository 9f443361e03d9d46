"""``SyncClient``: edit documents offline, sync when the server is reachable.

Every edit is a mutation with the next sequence number, the version it was made
against and a hybrid logical timestamp; it goes to the outbox in the same SQLite
transaction that advances the counters (a value strict JSON cannot carry, such as NaN,
is refused there). ``sync_once`` pushes the outbox in pipelined batches (``outbox``),
settles each result (applied/merged: acknowledged, and folded into the replica; rejected:
moved to the dead letters with its reason; timeout: kept), then pulls every page of the
change feed. No mutation can block the others: one whose push is refused as a whole for
what it carries is isolated and dead-lettered too.
``dlq retry`` queues a dead letter again as a new edit, ``dlq drop`` forgets it.
``start`` runs the sync in a thread that outlives any failure (``status()`` shows the
last one), with exponential backoff with jitter between failures and a circuit breaker.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..domain.documents import Document
from ..domain.errors import CommandRejected
from ..domain.hlc import ZERO, HybridClock, Timestamp
from ..domain.policies import PolicyBook
from ..domain.policy_config import policy_book
from .background import SyncLoop
from .dead_letters import DeadLetters
from .outbox import OutboxPusher, SyncReport
from .replica import apply_change, crdt_delta, latest_clock, local_view, visible
from .resilience import Backoff, CircuitBreaker
from .store import LocalStore
from .transport import HttpClient, SyncTransport
from .values import check_sendable

log = logging.getLogger(__name__)
class SyncClient:
    """One offline-first client: a replica and an outbox in ``path``, synced with ``server``.

    ``token`` is sent as ``Authorization: Bearer <token>``; on a 401, ``fetch_token()`` (when
    given) is asked for a new one and the request is sent once more.
    """

    def __init__(
        self,
        path: str | Path,
        server: str | HttpClient,
        collections: list[str],
        client_id: str | None = None,
        breaker: CircuitBreaker | None = None,
        backoff: Backoff | None = None,
        *,
        token: str | None = None,
        fetch_token: Callable[[], str] | None = None,
    ) -> None:
        self.store = LocalStore(path)
        self.transport = SyncTransport(server, token=token, fetch_token=fetch_token)
        self.collections = sorted(collections)
        self.client_id = self._identity(client_id)
        last = self.store.get_meta("clock")
        self.clock = HybridClock(self.client_id, Timestamp.parse(last) if last else ZERO)
        self.breaker, self.backoff = breaker or CircuitBreaker(), backoff or Backoff()
        self.loop, self.dead = SyncLoop(self.backoff), DeadLetters(self.store)
        self.pusher = OutboxPusher(self.store, self.transport, self.client_id, lambda: self.policies)

    def _identity(self, wanted: str | None) -> str:
        known = self.store.get_meta("client_id")
        if known and wanted and known != wanted:
            raise CommandRejected(f"{self.store.path} belongs to client {known!r}, not {wanted!r}")
        client_id = known or wanted or f"c-{uuid.uuid4().hex[:12]}"
        with self.store.transaction() as db:
            self.store.set_meta(db, "client_id", client_id)
        return str(client_id)

    @property
    def policies(self) -> PolicyBook:
        return policy_book(self.store.get_meta("policies", {}))

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """The document as this client sees it (None if it does not exist)."""
        return visible(self.view(collection, doc_id))

    def view(self, collection: str, doc_id: str) -> Document:
        """The server's document with the pending mutations rebased on top."""
        pending = self.store.pending(collection, doc_id)
        policy = self.policies.for_collection(collection)
        return local_view(self.store.document(collection, doc_id), pending, policy, self.client_id)

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> int:
        """Create or replace a document; returns the mutation's seq."""
        return self._mutate(collection, doc_id, "put", data=data)

    def patch(
        self, collection: str, doc_id: str, set_: dict[str, Any] | None = None, unset: list[str] | None = None
    ) -> int:
        """Set and remove fields of a document; returns the mutation's seq."""
        return self._mutate(collection, doc_id, "patch", data=set_ or {}, unset=list(unset or []))

    def delete(self, collection: str, doc_id: str) -> int:
        return self._mutate(collection, doc_id, "delete")

    def increment(self, collection: str, doc_id: str, field_name: str, amount: int = 1) -> int:
        """Add ``amount`` to a counter field (crdt policy)."""
        return self._crdt(collection, doc_id, field_name, "counter", amount=amount)

    def add(self, collection: str, doc_id: str, field_name: str, value: Any) -> int:
        """Add ``value`` to an OR-set field (crdt policy)."""
        return self._crdt(collection, doc_id, field_name, "orset", add=value)

    def remove(self, collection: str, doc_id: str, field_name: str, value: Any) -> int:
        """Remove ``value`` from an OR-set field, as this client sees it (crdt policy)."""
        return self._crdt(collection, doc_id, field_name, "orset", remove=value)

    def _crdt(self, collection: str, doc_id: str, field_name: str, kind: str, **op: Any) -> int:
        view, seq = self.view(collection, doc_id), int(self.store.get_meta("next_seq", 1))
        delta = crdt_delta(view, field_name, kind, self.client_id, f"{self.client_id}:{seq}", **op)
        return self._mutate(collection, doc_id, "patch", crdt={field_name: delta})

    def _mutate(self, collection: str, doc_id: str, op: str, **fields: Any) -> int:
        with self.store.transaction() as db:
            seq = self._enqueue(db, collection, doc_id, op, fields)
        self.loop.wake()
        return seq

    def _enqueue(self, db: sqlite3.Connection, collection: str, doc_id: str, op: str, fields: dict[str, Any]) -> int:
        """Queue one mutation in the open transaction ``db``; returns its seq."""
        for name, value in fields.items():
            check_sendable(value, name)
        seq = int(self.store.get_meta("next_seq", 1))
        base = self.store.document(collection, doc_id).version
        stamp = self.clock.now()
        mutation = {"seq": seq, "collection": collection, "id": doc_id, "op": op, "base_version": base}
        mutation |= {"clock": str(stamp), **fields}
        self._check_applies(mutation)
        self.store.enqueue(db, mutation)
        self.store.set_meta(db, "next_seq", seq + 1)
        self.store.set_meta(db, "clock", str(stamp))
        return seq

    def _check_applies(self, mutation: dict[str, Any]) -> None:
        """Refuse at once an edit that cannot apply to what this client sees (e.g. patch of a missing document)."""
        view = self.view(mutation["collection"], mutation["id"])
        after = local_view(view, [mutation], self.policies.for_collection(view.collection), self.client_id)
        if after.version == view.version:
            raise CommandRejected(
                f"{mutation['op']} cannot apply to {view.collection}/{view.id} as this client sees it"
            )

    def sync_once(self) -> SyncReport:
        """Push the outbox, then pull every new change; through the circuit breaker."""
        return self.breaker.call(self._sync)

    def _sync(self) -> SyncReport:
        report = self.push()
        report.pulled = self.pull()
        return report

    def push(self) -> SyncReport:
        """Push the outbox in pipelined batches and settle each result (not through the breaker)."""
        if self.store.get_meta("policies") is None:
            with self.store.transaction() as db:
                self.store.set_meta(db, "policies", self.transport.policies())
        return self.pusher.push()

    def pull(self, wait_s: float = 0.0) -> int:
        """Apply every page of changes after the stored cursor; returns how many changes came."""
        pulled = 0
        while True:
            page = self.transport.pull(self.store.get_meta("cursor"), self.collections, wait_s=wait_s)
            with self.store.transaction() as db:
                for change in page["changes"]:
                    doc = self.store.document(change["collection"], change["id"])
                    self.store.save_document(db, apply_change(doc, change))
                    if (stamp := latest_clock(change.get("data") or {})) is not None:
                        self.clock.observe(stamp)
                self.store.set_meta(db, "cursor", page["cursor"])
                if self.clock.last != ZERO:
                    self.store.set_meta(db, "clock", str(self.clock.last))
            pulled += len(page["changes"])
            if not page["more"]:
                return pulled
            wait_s = 0.0

    def status(self) -> dict[str, Any]:
        """Client id, outbox size, cursor, outcome counts, dead letters (the latest few), breaker state,
        whether the background sync runs, and its last error."""
        counts: dict[str, int] = {}
        for outcome in self.store.outcomes().values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        return {
            "client_id": self.client_id,
            "pending": len(self.store.pending()),
            "cursor": self.store.get_meta("cursor"),
            "documents": len(self.store.documents()),
            "outcomes": counts,
            "dead_letters": self.dead.status(),
            "breaker": self.breaker.state,
            "syncing": self.loop.running,
            "last_error": self.last_error,
        }

    def dead_letters(self) -> list[dict[str, Any]]:
        """The mutations the server refused for good, oldest first, with their code and reason."""
        return self.store.dead_letters()

    def retry_dead_letter(self, seq: int) -> int:
        """Queue dead letter ``seq`` again as a new edit: a new seq and clock, made on the document as this
        client sees it now; returns the new seq. If it no longer applies, CommandRejected, and it stays."""
        mutation = self.dead.find(seq)["mutation"]
        fields = {k: mutation[k] for k in ("data", "unset", "crdt") if k in mutation}
        with self.store.transaction() as db:
            new_seq = self._enqueue(db, mutation["collection"], mutation["id"], mutation["op"], fields)
            self.store.forget_dead_letter(db, seq)
        self.loop.wake()
        return new_seq

    def drop_dead_letter(self, seq: int) -> None:
        """Forget dead letter ``seq`` (its outcome stays recorded as rejected)."""
        self.dead.drop(seq)

    @property
    def last_error(self) -> dict[str, str] | None:
        """The background sync's last failure (``type``, one-line ``message``, ``at``); None once a step succeeds."""
        return self.loop.last_error

    def start(self, idle_wait_s: float = 2.0) -> None:
        """Sync in a background thread until ``stop``; it outlives every failure (see ``status()``)."""
        self.loop.start(lambda: self._step(idle_wait_s))

    def _step(self, idle_wait_s: float) -> None:
        self.sync_once()
        if not self.store.pending():
            self.breaker.call(lambda: self.pull(wait_s=idle_wait_s))

    def stop(self) -> None:
        self.loop.stop()

    def close(self) -> None:
        """Stop syncing and release the file and the connection."""
        self.stop()
        self.transport.close()
        self.store.close()
