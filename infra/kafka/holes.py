"""How long a reader waits at a hole in a ``read_committed`` fetch: one rule for every client adapter.

Tansu 0.6 now and then leaves a transaction still being committed out of a ``read_committed`` fetch
response and returns the records after it (``docs/kafka-brokers.md``). Each client adapter finds such
holes its own way (``kafka_python/holes.py`` cuts fetch responses, ``confluent/gaps.py`` checks the
offsets librdkafka steps over); both then fetch the partition again from the hole until the broker
fills it, which is how Kafka would hold the reader. ``Holes`` says when to stop waiting: a hole still
there after the profile's ``hole_patience_s`` is taken as real and read past, with a warning.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)
Partition = tuple[str, int]
"""A topic and partition."""


class Holes:
    """Per reader, the hole each partition is waiting on, and since when."""

    def __init__(self, patience_s: float) -> None:
        self.patience_s = patience_s
        self._waiting: dict[Partition, tuple[int, float]] = {}

    def read_past(self, tp: Partition, start: int, end: int) -> bool:
        """Whether to read past the missing offsets ``start`` to ``end - 1`` now (else fetch them again)."""
        now = time.monotonic()
        at, since = self._waiting.get(tp, (start, now))
        if at != start:
            since = now
        if now - since < self.patience_s:
            self._waiting[tp] = (start, since)
            return False
        self._waiting.pop(tp, None)
        log.warning("%s-%s: offsets %s to %s never came in %.0f s: reading past them", *tp, start, end - 1, now - since)
        return True
