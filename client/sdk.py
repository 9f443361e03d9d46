"""``SyncClient``: edit documents offline, sync when the server is reachable.

Every edit is a mutation with the next sequence number, the version it was made
against and a hybrid logical timestamp; it goes to the outbox in the same SQLite
transaction that advances the counters. ``sync_once`` pushes the outbox, settles each
result (applied/merged: acknowledged; rejected: dropped with its reason; timeout:
kept), then pulls every page of the change feed. ``start`` runs that in a thread,
with exponential backoff with jitter between failures and a circuit breaker.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..domain.documents import Document
from ..domain.errors import CommandRejected, SyncBackboneError
from ..domain.hlc import ZERO, HybridClock, Timestamp
from ..domain.policies import PolicyBook
from ..domain.policy_config import policy_book
from .replica import apply_change, crdt_delta, from_state, latest_clock, local_view, visible
from .resilience import Backoff, CircuitBreaker
from .store import LocalStore
from .transport import HttpClient, SyncTransport

log = logging.getLogger(__name__)
PUSH_BATCH = 200


@dataclass(slots=True)
class SyncReport:
    """What one sync step did."""

    pushed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    pulled: int = 0

    @property
    def quiet(self) -> bool:
        return self.pushed == 0 and self.pulled == 0


class SyncClient:
    """One offline-first client: a replica and an outbox in ``path``, synced with ``server``."""

    def __init__(
        self,
        path: str | Path,
        server: str | HttpClient,
        collections: list[str],
        client_id: str | None = None,
        breaker: CircuitBreaker | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.store = LocalStore(path)
        self.transport = SyncTransport(server)
        self.collections = sorted(collections)
        self.client_id = self._identity(client_id)
        last = self.store.get_meta("clock")
        self.clock = HybridClock(self.client_id, Timestamp.parse(last) if last else ZERO)
        self.breaker, self.backoff = breaker or CircuitBreaker(), backoff or Backoff()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

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
            seq = int(self.store.get_meta("next_seq", 1))
            base = self.store.document(collection, doc_id).version
            stamp = self.clock.now()
            mutation = {"seq": seq, "collection": collection, "id": doc_id, "op": op, "base_version": base}
            mutation |= {"clock": str(stamp), **fields}
            self._check_applies(mutation)
            self.store.enqueue(db, mutation)
            self.store.set_meta(db, "next_seq", seq + 1)
            self.store.set_meta(db, "clock", str(stamp))
        self._wake.set()
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
        """Push the outbox in batches and settle each result (not through the breaker)."""
        report = SyncReport()
        if self.store.get_meta("policies") is None:
            with self.store.transaction() as db:
                self.store.set_meta(db, "policies", self.transport.policies())
        while pending := self.store.pending(limit=PUSH_BATCH):
            results = self.transport.push(self.client_id, pending)
            report.pushed += len(pending)
            if not self._settle(pending, results, report):
                break
        return report

    def _settle(self, pending: list[dict[str, Any]], results: list[dict[str, Any]], report: SyncReport) -> bool:
        """Record each result; False if some mutation must be pushed again later."""
        settled_all = True
        with self.store.transaction() as db:
            for mutation, result in zip(pending, results, strict=True):
                status = result["status"]
                report.statuses[status] = report.statuses.get(status, 0) + 1
                if result.get("retryable"):
                    self.store.retry_later(db, mutation["seq"])
                    settled_all = False
                    continue
                self.store.settle(db, mutation["seq"], result)
                self._adopt(db, mutation, result)
        return settled_all

    def _adopt(self, db: Any, mutation: dict[str, Any], result: dict[str, Any]) -> None:
        """Keep the server state a result carries, and rebase the document's later mutations on it."""
        state = result.get("state")
        if not state:
            return
        collection, doc_id = mutation["collection"], mutation["id"]
        if state["version"] > self.store.document(collection, doc_id).version:
            self.store.save_document(db, from_state(collection, doc_id, state))
        if result["status"] in ("applied", "merged"):
            self.store.rebase(db, collection, doc_id, mutation["seq"], int(result["version"]))

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
        """Client id, outbox size, cursor, breaker state and outcome counts."""
        counts: dict[str, int] = {}
        for outcome in self.store.outcomes().values():
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        return {
            "client_id": self.client_id,
            "pending": len(self.store.pending()),
            "cursor": self.store.get_meta("cursor"),
            "documents": len(self.store.documents()),
            "outcomes": counts,
            "breaker": self.breaker.state,
            "last_error": self.last_error,
        }

    def start(self, idle_wait_s: float = 2.0) -> None:
        """Sync in a background thread until ``stop``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(idle_wait_s,), name="sync-client", daemon=True)
        self._thread.start()

    def _run(self, idle_wait_s: float) -> None:
        while not self._stop.is_set():
            try:
                self._wake.clear()
                self.sync_once()
                self.backoff.reset()
                self.last_error = None
                if not self.store.pending():
                    self.breaker.call(lambda: self.pull(wait_s=idle_wait_s))
            except SyncBackboneError as e:
                self.last_error = str(e)
                delay = self.backoff.next_delay()
                log.info("sync failed (%s); next try in %.2f s", e, delay)
                self._wake.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def close(self) -> None:
        """Stop syncing and release the file and the connection."""
        self.stop()
        self.transport.close()
        self.store.close()
