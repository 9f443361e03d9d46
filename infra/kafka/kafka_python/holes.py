"""Waiting at a hole in a ``read_committed`` fetch: Tansu's, chosen by its broker profile (``../brokers.py``).

Kafka holds ``read_committed`` readers at the last stable offset: nothing at or past the first record
of an open transaction is returned until it ends. Tansu 0.6 now and then instead leaves the open
transaction's batches out of the fetch response and returns the batches after them (seen: a fetch at
offset 64 answered from 68, the transaction at 64-67 committed at 70). kafka-python then moves the
position past the hole, and that reader never sees the transaction; a fresh reader does.

Our topics are never compacted, so batches follow each other without a hole; a response with a hole
is that quirk. ``fill_holes`` makes a consumer cut such a response at the hole, so the partition is
fetched again from there until the broker fills it, which is how Kafka would hold the reader. A hole
still there after the profile's ``hole_patience_s`` is taken as real and read past, with a warning
(``../holes.py``, the rule every client adapter shares).
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from ..holes import Holes

__all__ = ["Holes", "UpToHole", "fill_holes"]


class UpToHole:
    """A fetch response's record batches, up to the first offset the broker left out."""

    def __init__(self, records: Any, tp: TopicPartition, fetch_offset: int, holes: Holes) -> None:
        self._records, self._tp, self._holes = records, tp, holes
        self._expected, self._cut = fetch_offset, False

    def next_batch(self) -> Any:
        batch = None if self._cut else self._records.next_batch()
        if batch is None:
            return None
        if batch.base_offset > self._expected and not self._holes.read_past(
            self._tp, self._expected, batch.base_offset
        ):
            self._cut = True
            return None
        self._expected = max(self._expected, batch.next_offset)
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)


def fill_holes(consumer: KafkaConsumer, patience_s: float) -> KafkaConsumer:
    """Make ``consumer`` cut every fetch response at its first hole (see the module docstring)."""
    fetcher = consumer._fetcher
    holes = Holes(patience_s)

    class HoleCutRecords(type(fetcher).PartitionRecords):  # type: ignore[misc]
        def __init__(self, fetch_offset: int, tp: TopicPartition, records: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(fetch_offset, tp, UpToHole(records, tp, fetch_offset, holes), *args, **kwargs)

    fetcher.PartitionRecords = HoleCutRecords
    return consumer
