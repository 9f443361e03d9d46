"""Notices of read-model commits: what wakes a reader waiting for the change feed or a checkpoint.

A store announces each committed batch of a live projection: ``CheckpointAdvanced`` once
per batch, ``FeedAdvanced`` once per collection of a sequenced table (the ``changes``
feed) that the batch appended to, with the last position it took. A ``NoticeSource``
delivers them to one process. Its first notice is a ``Resync``: from then on every commit
is noticed, and what was committed before may have been missed, so a waiter reads again.
A rebuild swapping a copy in is a ``Resync`` too (positions start over). ``Interrupted``
says the source stopped hearing (its connection went); the next ``Resync`` ends the gap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FeedAdvanced:
    """The feed of ``collection`` (tenant-qualified) in ``projection``'s sequenced table now holds positions up to
    ``position``."""

    projection: str
    collection: str
    position: int


@dataclass(frozen=True, slots=True)
class CheckpointAdvanced:
    """``projection`` applied ``partition`` up to (not including) ``next_offset``."""

    projection: str
    partition: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class Resync:
    """Every commit from now on is noticed; anything before may have changed unnoticed: read again."""


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Commits go unnoticed from now on, until the next Resync."""


Notice = FeedAdvanced | CheckpointAdvanced | Resync | Interrupted


class NoticeSource(ABC):
    """The read models' commit notices of one namespace, as they happen."""

    @abstractmethod
    def notices(self) -> AsyncIterator[Notice]:
        """Every notice from now on, starting with a Resync once listening; reconnect after a failure
        (Interrupted, then a Resync); runs until the consumer stops iterating or is cancelled."""
