"""Pushing the outbox: batches pipelined within per-document order, each result settled into the replica.

A batch is the oldest pending mutations (at most ``PUSH_BATCH``) of documents that have
nothing in flight. Up to ``PIPELINE_DEPTH`` batches are in flight at once, so the next batch
is sent while the previous one is answered; a document's mutations never overtake one
another, because a document with a mutation in flight sends nothing more until that batch
is settled. Batches are settled in the order they were sent, each result in one transaction:

- applied: acknowledged, and folded into the stored document when it landed on the version
  right after it (``replica.acknowledged``), so the next base version and counter delta
  count it before the change feed brings it back (a result carries no state then);
- merged or rejected: the server's state that comes with it is kept;
- applied or merged: the document's later pending mutations made on the version right
  before it are moved onto it (``LocalStore.rebase``);
- rejected: dead-lettered; a timeout: kept, and no new batch goes out until the next sync.

A batch refused as a whole for what it carries is halved until the one mutation refused on
its own is found and dead-lettered; the rest of the outbox goes on.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..domain.policies import PolicyBook
from .dead_letters import DeadLetters
from .errors import RequestRefused
from .replica import acknowledged, from_state
from .store import DocKey, LocalStore
from .transport import SyncTransport

Db = sqlite3.Connection
PUSH_BATCH = 200
PIPELINE_DEPTH = 2
"""Batches in flight at once: the next is sent while the previous one is answered."""


@dataclass(slots=True)
class SyncReport:
    """What one sync step did."""

    pushed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    pulled: int = 0
    dead_lettered: int = 0

    @property
    def quiet(self) -> bool:
        return self.pushed == 0 and self.pulled == 0 and self.dead_lettered == 0

    def count(self, status: str, dead_lettered: bool = False, n: int = 1) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + n
        self.dead_lettered += n if dead_lettered else 0


@dataclass(slots=True)
class InFlight:
    """A batch sent, and its answer to come."""

    batch: list[dict[str, Any]]
    answer: Future[list[dict[str, Any]]]


def busy(flying: deque[InFlight]) -> set[DocKey]:
    """The documents with a mutation in flight."""
    return {(m["collection"], m["id"]) for sent in flying for m in sent.batch}


class OutboxPusher:
    """Pushes one client's outbox and settles the results in its store."""

    def __init__(
        self,
        store: LocalStore,
        transport: SyncTransport,
        client_id: str,
        policies: Callable[[], PolicyBook],
    ) -> None:
        self.store, self.transport, self.client_id, self.policies = store, transport, client_id, policies
        self.dead = DeadLetters(store)

    def push(self) -> SyncReport:
        """Push the outbox, pipelined, and settle every result; stops early after a retryable one."""
        report, flying, limit, more = SyncReport(), deque[InFlight](), PUSH_BATCH, True
        with ThreadPoolExecutor(PIPELINE_DEPTH, thread_name_prefix="sync-push") as pool:
            while True:
                while more and len(flying) < PIPELINE_DEPTH and (batch := self._next_batch(limit, flying, report)):
                    flying.append(InFlight(batch, pool.submit(self.transport.push, self.client_id, batch)))
                if not flying:
                    return report
                sent = flying.popleft()
                try:
                    results = sent.answer.result()
                except RequestRefused as e:
                    if not e.about_the_content:
                        raise
                    limit = self._isolate(sent.batch, e, report)
                    continue
                report.pushed += len(sent.batch)
                more = self._settle(sent.batch, results, report) and more

    def _next_batch(self, limit: int, flying: deque[InFlight], report: SyncReport) -> list[dict[str, Any]]:
        """The oldest pending mutations of documents with nothing in flight (unsendable ones dead-lettered)."""
        while True:
            pending = self.store.pending_except(busy(flying), limit)
            buried = self.dead.bury_unsendable(pending)
            if not buried:
                return pending
            report.count("rejected", dead_lettered=True, n=buried)

    def _isolate(self, pending: list[dict[str, Any]], refusal: RequestRefused, report: SyncReport) -> int:
        """The batch size to push next after ``pending`` was refused: half of it, or, once a single
        mutation is refused on its own, a full batch after dead-lettering that one.

        A 403 may be about the token rather than the mutation (a token for another client): an
        empty push tells, and if it is refused too, so is the push, and the outbox waits."""
        if len(pending) > 1:
            return len(pending) // 2
        if refusal.status == 403:
            self.transport.push(self.client_id, [])
        self.dead.bury(pending[0], "refused", str(refusal))
        report.count("rejected", dead_lettered=True)
        return PUSH_BATCH

    def _settle(self, pending: list[dict[str, Any]], results: list[dict[str, Any]], report: SyncReport) -> bool:
        """Record each result; False if some mutation must be pushed again later."""
        settled_all, book = True, self.policies()
        with self.store.transaction() as db:
            for mutation, result in zip(pending, results, strict=True):
                status = result["status"]
                report.count(status, dead_lettered=status == "rejected" and not result.get("retryable"))
                if result.get("retryable"):
                    self.store.retry_later(db, mutation["seq"])
                    settled_all = False
                    continue
                if status == "rejected":
                    self.store.dead_letter(db, mutation, result)
                else:
                    self.store.settle(db, mutation["seq"], result)
                self._adopt(db, mutation, result, book)
        return settled_all

    def _adopt(self, db: Db, mutation: dict[str, Any], result: dict[str, Any], book: PolicyBook) -> None:
        """Bring the stored document up to what ``result`` tells, and rebase the document's later mutations."""
        collection, doc_id = mutation["collection"], mutation["id"]
        stored = self.store.document(collection, doc_id)
        if state := result.get("state"):
            if state["version"] > stored.version:
                self.store.save_document(db, from_state(collection, doc_id, state))
        elif result["status"] == "applied":
            policy = book.for_collection(collection)
            folded = acknowledged(stored, mutation, policy, self.client_id, int(result["version"]))
            if folded is not None:
                self.store.save_document(db, folded)
        if result["status"] in ("applied", "merged"):
            self.store.rebase(db, collection, doc_id, mutation["seq"], int(result["version"]))
