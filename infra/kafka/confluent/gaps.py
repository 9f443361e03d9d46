"""Fetch holes under librdkafka: which offsets it stepped over were transaction markers, and which a hole.

Tansu 0.6 now and then leaves a transaction still being committed out of a ``read_committed`` fetch
response and returns the records after it (``docs/kafka-brokers.md``). kafka-python shows a reader the
batches of a response, markers included, so a hole is a gap between batches (``kafka_python/holes.py``).
librdkafka shows records only: it steps over transaction markers without a word, so a gap between two
records it returns (or between a reader's position and the end it reports) is markers, or a hole.

``GapProbe`` tells them apart by reading the gap ``read_uncommitted``: a marker is never returned to
anyone, while a transaction's records are, committed, open or aborted alike. A gap that holds records
is a hole (Tansu shows aborted records to ``read_committed`` readers too, so they never make a gap
there). The reader then fetches the partition again from the hole until the broker fills it, as Kafka
would hold it, for at most the profile's ``hole_patience_s`` (``../holes.py``).

One kind of gap needs no probe: a single offset stepped over at the partition's end. librdkafka moves
past offsets only by handling batches the broker returned, and a batch at that one offset that it
returned nothing of is a marker; a hole is followed by a batch, so at the end it spans two offsets.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence

from confluent_kafka import Consumer, KafkaError, TopicPartition

from ..holes import Holes
from .errors import TIMEOUT_S, ours, translated

log = logging.getLogger(__name__)
Gap = tuple[int, int]
"""The offsets ``start`` to ``end - 1`` of one partition, which a reader was not shown."""


class GapProbe:
    """A ``read_uncommitted`` consumer that tells which gaps hold records (made on first use, idle between uses)."""

    def __init__(self, make: Callable[[], Consumer]) -> None:
        self._make = make
        self._consumer: Consumer | None = None

    def filled(self, topic: str, partition: int, gaps: Sequence[Gap], timeout_s: float = TIMEOUT_S) -> list[bool]:
        """For each gap, in offset order, whether it holds a record (one not read in time counts as filled)."""
        what = f"reading the gaps of {topic}-{partition} read_uncommitted"
        with translated(what):
            consumer = self._consumer = self._consumer or self._make()
            consumer.assign([TopicPartition(topic, partition, gaps[0][0])])
            try:
                found, reached = self._offsets(consumer, gaps[-1][1], timeout_s, what)
            finally:
                consumer.unassign()
        return [not reached or bisect_left(found, start) < bisect_left(found, end) for start, end in gaps]

    @staticmethod
    def _offsets(consumer: Consumer, end: int, timeout_s: float, what: str) -> tuple[list[int], bool]:
        """The offsets below ``end`` that hold records, read from the assigned one on; whether ``end`` was reached."""
        found: list[int] = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            first = consumer.poll(left)  # consume(n, timeout) would wait for n messages
            for m in [] if first is None else [first, *consumer.consume(1000, 0)]:
                error, offset = m.error(), m.offset() or 0
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ours(error, what)
                if offset >= end:
                    return found, True
                if error is None:
                    found.append(offset)
        return found, False

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class Gaps:
    """One reader's gap checks: a probe, and the patience of its broker profile at each hole."""

    def __init__(self, probe: GapProbe, patience_s: float) -> None:
        self.probe = probe
        self.holes = Holes(patience_s)

    def hole(self, topic: str, partition: int, gaps: Sequence[Gap]) -> int | None:
        """Where to fetch ``partition`` again from: the first gap that holds records, unless waited at long enough
        (then the next, and so on); None if every gap can be passed."""
        for (start, end), filled in zip(gaps, self.probe.filled(topic, partition, gaps), strict=True):
            if filled and not self.holes.read_past((topic, partition), start, end):
                log.debug("%s-%s: offsets %s to %s hold records not shown: fetched again", topic, partition, start, end)
                return start
        return None
