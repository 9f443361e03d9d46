"""The client's dead letters: mutations the server refuses for good, kept out of the outbox.

Invariant: a mutation leaves the outbox only with an outcome. Applied and merged ones are
acknowledged; a refused one (a ``rejected`` result, a push refused for what that mutation
carries, or one that cannot be sent as JSON) is settled as ``rejected`` and kept here with
its code and reason, so that the rest of the outbox goes on and nothing is lost silently.
The application (or ``syncbackbone client dlq``) lists them, queues one again as a new
edit, or drops it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..domain.errors import InvalidInput
from .store import LocalStore
from .values import check_sendable

log = logging.getLogger(__name__)
SHOWN = 10
"""How many of the latest dead letters ``status()`` shows."""


class DeadLetters:
    """The dead-letter list of one client's store."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def bury(self, mutation: dict[str, Any], code: str, reason: str) -> None:
        """Move ``mutation`` from the outbox to the dead letters, settled as rejected with ``code`` and ``reason``."""
        with self.store.transaction() as db:
            self.store.dead_letter(db, mutation, {"status": "rejected", "code": code, "reason": reason})
        log.warning("mutation %s dead-lettered (%s): %s", mutation["seq"], code, reason)

    def bury_unsendable(self, pending: Sequence[dict[str, Any]]) -> int:
        """Dead-letter those of ``pending`` that cannot be sent as JSON (queued by an older SDK); how many."""
        buried = 0
        for mutation in pending:
            try:
                check_sendable(mutation, "mutation")
            except InvalidInput as e:
                self.bury(mutation, "unsendable", str(e))
                buried += 1
        return buried

    def find(self, seq: int) -> dict[str, Any]:
        """Dead letter ``seq``, or InvalidInput."""
        for letter in self.store.dead_letters():
            if letter["seq"] == seq:
                return letter
        raise InvalidInput(f"no dead letter has seq {seq}; list them to see which there are")

    def drop(self, seq: int) -> None:
        """Forget dead letter ``seq`` (its outcome stays recorded as rejected)."""
        self.find(seq)
        with self.store.transaction() as db:
            self.store.forget_dead_letter(db, seq)

    def status(self) -> dict[str, Any]:
        """How many there are, and the latest few without their data."""
        letters = self.store.dead_letters()
        return {"count": len(letters), "latest": [summary(d) for d in letters[-SHOWN:]]}


def summary(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter without its data: seq, document, op, code and reason."""
    return {k: letter[k] for k in ("seq", "collection", "id", "code", "reason")} | {"op": letter["mutation"]["op"]}
