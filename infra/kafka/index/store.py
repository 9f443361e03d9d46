"""The port through which a Kafka log saves and looks up its partition index (implemented under ``postgres/``).

The index rows are a pure function of the log, so any reader may save them: concurrent
savers save the same rows and a checkpoint only moves forward.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ....domain.records import StoredEvent


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Every valid event of a partition below ``next_offset`` is indexed; the last one is at ``last_offset``."""

    next_offset: int
    last_offset: int
    last_aggregate_id: str
    last_version: int


@dataclass(frozen=True, slots=True)
class Located:
    """Where an indexed event is: version ``version`` of ``aggregate_id`` at ``offset`` of its partition."""

    aggregate_id: str
    version: int
    offset: int


class IndexStore(abc.ABC):
    """The saved index of a Kafka log's partitions; every method raises ``LogUnavailable`` when unreachable."""

    @abc.abstractmethod
    def checkpoint(self, partition: int) -> Checkpoint | None:
        """The partition's saved checkpoint, if any."""

    @abc.abstractmethod
    def versions(self, aggregate_ids: Collection[str], below: int) -> dict[str, int]:
        """Each aggregate's latest version at an offset below ``below`` (absent: none)."""

    @abc.abstractmethod
    def versions_between(self, wanted: Mapping[str, tuple[int, int]]) -> list[Located]:
        """For each aggregate, its versions from the first to the last asked for; by aggregate, then version."""

    @abc.abstractmethod
    def partition_from(self, partition: int, offset: int, below: int, limit: int) -> list[Located]:
        """Up to ``limit`` events of ``partition`` from ``offset`` on and below ``below``, in offset order."""

    @abc.abstractmethod
    def commands(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[Located]]:
        """The events each (aggregate, command id) caused, in version order."""

    @abc.abstractmethod
    def save(self, partition: int, events: Sequence[StoredEvent], checkpoint: Checkpoint) -> None:
        """Index ``events`` of ``partition`` and move its checkpoint forward to ``checkpoint``, atomically."""

    @abc.abstractmethod
    def removal_hint(self, partition: int) -> str:
        """What an operator runs to delete the saved index of ``partition`` (named in a mismatch's log line)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connections; later calls raise ``LogUnavailable``."""
