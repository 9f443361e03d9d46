"""Conflict policies: what happens when a command's expected_version is stale.

A policy sees the document as it is and the version the command was made
against, and either lets the decision through or raises ``VersionConflict``.
``strict`` is built in; LWW, field merge and CRDT policies plug in here through
the same ``ConflictPolicy`` seam, chosen per collection at bootstrap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from .documents import Document, DocumentEvent
from .errors import VersionConflict
from .limits import Limits
from .mutations import BaseLoader, Change, no_base, plain
from .names import unqualified


class ConflictPolicy(ABC):
    """Decides whether a command made against ``expected_version`` may proceed.

    A policy that ``resolves`` conflicts sees every change of its collection through
    ``decide`` (which may record a ``ConflictResolved``); the others are only asked to
    ``check``, and ``decide`` checks and then applies the change as it is.
    """

    name: str
    resolves: bool = False

    @abstractmethod
    def check(self, doc: Document, expected_version: int | None) -> None:
        """Return if the command may proceed; raise VersionConflict otherwise."""

    def decide(self, change: Change, doc: Document, base: BaseLoader = no_base) -> list[DocumentEvent]:
        """The events ``change`` produces on ``doc`` (``base`` gives older versions); DomainError if none."""
        self.check(doc, change.base_version)
        return plain(change, doc)


class StrictPolicy(ConflictPolicy):
    """Optimistic concurrency: any mismatch is rejected with the current version."""

    name = "strict"

    def check(self, doc: Document, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != doc.version:
            raise VersionConflict(expected_version, doc.version)


class PolicyBook:
    """The conflict policy of each collection, with a default for the rest, and the ``limits`` every
    change is decided within."""

    def __init__(
        self,
        default: ConflictPolicy | None = None,
        per_collection: Mapping[str, ConflictPolicy] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._default = default or StrictPolicy()
        self._per_collection = dict(per_collection or {})
        self.limits = limits or Limits()

    def for_collection(self, collection: str) -> ConflictPolicy:
        """The policy that governs ``collection`` (a tenant's ``tenant~notes`` is governed as ``notes``)."""
        return self._per_collection.get(unqualified(collection), self._default)
