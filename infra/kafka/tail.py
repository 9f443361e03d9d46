"""Waiting at the end of partitions: an idle reader sleeps on a long fetch instead of asking in a loop.

A reader that has read the partitions it follows to their end and asks again (a projection
worker with nothing to do) would ask the broker where each partition ends as fast as it loops.
Instead, ``IdleReaders`` remembers, per calling thread, where it last asked each partition from;
once it asks at the end of all of them, the call is held until a record comes, at most
``IDLE_WAIT_S``: on one fetch of the partitions the log does not own, with a long fetch wait
(the broker answers as soon as a record arrives), or, if the log owns them all, until its own
writer appends. A caller is never held while one of its partitions has events
it has not asked for yet. The records the tail fetches are only a signal: the caller's catch-up
reads and validates them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from .client import KafkaClient, Reader

IDLE_WAIT_MS = 1000
"""The longest a reader at the end of its partitions is held before it gets its (empty) answer (its fetch's
wait on the broker): idle projection workers (each asking every partition it owns in turn) then spend
about 1 % of a core (measured on Tansu; 2 % with half this wait)."""
IDLE_WAIT_S = IDLE_WAIT_MS / 1000
FORGET_S = 10.0
"""A partition a thread has not asked about for this long is no longer one it follows."""


class IdleReaders:
    """What the callers of one log follow (per thread, forgotten after FORGET_S unasked), and where they wait."""

    def __init__(self, client: KafkaClient, topic: str) -> None:
        self._local = threading.local()
        self._tail = Tail(client, topic)
        self._grew = threading.Condition()
        self.appended = 0
        """How many times the log's owner appended (read it under the log's lock, with the index)."""

    def asked(self, partition: int, offset: int) -> dict[int, int]:
        """Note that the calling thread asks ``partition`` from ``offset``; what it asked lately, by partition."""
        now = time.monotonic()
        asked: dict[int, tuple[int, float]] = self._local.__dict__.setdefault("asked", {})
        asked[partition] = (offset, now)
        for p in [p for p, (_, at) in asked.items() if now - at > FORGET_S]:
            del asked[p]
        return {p: o for p, (o, _) in asked.items()}

    def grew(self) -> None:
        """The log's owner appended (called under the log's lock)."""
        with self._grew:
            self.appended += 1
            self._grew.notify_all()

    def wait(self, others: Mapping[int, int], appended: int) -> bool:
        """Wait for a record past ``others`` (partitions the log does not own -> next offset), or if there are none,
        for an append after the ``appended``-th; at most about IDLE_WAIT_S. Whether one came."""
        if others:
            return self._tail.wait(others)
        with self._grew:
            return self._grew.wait_for(lambda: self.appended != appended, IDLE_WAIT_S)

    def close(self) -> None:
        self._tail.close()


class Tail:
    """A reader of one topic kept for waiting (made on first use), used by one caller at a time."""

    def __init__(self, client: KafkaClient, topic: str) -> None:
        self._client, self._topic = client, topic
        self._lock = threading.Lock()
        self._reader: Reader | None = None
        self._assigned: list[int] = []

    def wait(self, positions: Mapping[int, int], timeout_s: float = IDLE_WAIT_S) -> bool:
        """Wait until a record at or past ``positions`` (partition -> offset) can be read, at most about
        ``timeout_s``; whether one can."""
        deadline = time.monotonic() + timeout_s
        if not positions or not self._lock.acquire(timeout=timeout_s):
            return False
        try:
            reader = self._follow(positions)
            while (left := deadline - time.monotonic()) > 0:
                if reader.poll(left, max_records=1):
                    return True
            return False
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
            self._reader = None

    def _follow(self, positions: Mapping[int, int]) -> Reader:
        """The reader, assigned ``positions``' partitions and at their offsets (seeking only where it is not)."""
        if self._reader is None:
            self._reader = self._client.reader(max_wait_ms=IDLE_WAIT_MS)
        wanted = sorted(positions)
        if wanted != self._assigned:
            self._reader.assign(self._topic, wanted)
            self._assigned = wanted
            for p in wanted:
                self._reader.seek(p, positions[p])
        for p in wanted:
            if self._reader.position(p) != positions[p]:
                self._reader.seek(p, positions[p])
        return self._reader
