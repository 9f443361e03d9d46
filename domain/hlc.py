"""Hybrid logical clocks: timestamps that follow wall time but never go backwards.

A ``Timestamp`` is (wall milliseconds, logical counter, node id); it orders totally
(the node id breaks ties) and its text form ``WWWWWWWWWWWWWWW.CCCCC.node`` sorts in
the same order. ``HybridClock`` issues timestamps for local events (``now``) and
moves past every timestamp it receives (``observe``), so a write made after seeing
another write always carries a larger timestamp (Kulkarni et al., 2014).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import InvalidInput

PATTERN = r"^[0-9]{15}\.[0-9]{5}\.[A-Za-z0-9_.:@-]{1,200}$"
_TEXT = re.compile(PATTERN)
MAX_COUNTER = 99_999
MAX_WALL_MS = 10**15 - 1
"""The largest wall time the 15-digit text form holds (about the year 33658)."""


def wall_ms() -> int:
    """Milliseconds since the epoch, from the system clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A point of hybrid logical time; compares by (wall_ms, counter, node)."""

    wall_ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.wall_ms:015d}.{self.counter:05d}.{self.node}"

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """The timestamp written as ``str(timestamp)``, or InvalidInput."""
        if not isinstance(text, str) or not _TEXT.match(text):
            raise InvalidInput(f"clock {text!r} is not a hybrid logical timestamp (WWWWWWWWWWWWWWW.CCCCC.node)")
        wall, counter, node = text.split(".", 2)
        return cls(int(wall), int(counter), node)

    def successor(self, node: str) -> Timestamp:
        """The smallest timestamp of ``node`` that is later than this one; at the very end of
        the text form (``MAX_WALL_MS``, ``MAX_COUNTER``) it stays there rather than overflow."""
        if self.counter < MAX_COUNTER:
            return Timestamp(self.wall_ms, self.counter + 1, node)
        if self.wall_ms < MAX_WALL_MS:
            return Timestamp(self.wall_ms + 1, 0, node)
        return Timestamp(MAX_WALL_MS, MAX_COUNTER, node)


ZERO = Timestamp(0, 0, "")


def latest(texts: Iterable[str]) -> Timestamp:
    """The largest of timestamps written as text (ZERO when there are none)."""
    return max((Timestamp.parse(t) for t in texts), default=ZERO)


class HybridClock:
    """The clock of one node: monotonic, close to wall time, past everything it has seen."""

    def __init__(self, node: str, last: Timestamp = ZERO, now_ms: Callable[[], int] = wall_ms) -> None:
        self.node = node
        self.last = last
        self._now_ms = now_ms

    def now(self) -> Timestamp:
        """A fresh timestamp for a local event, later than every one issued or observed."""
        wall = self._now_ms()
        if wall > self.last.wall_ms:
            self.last = Timestamp(wall, 0, self.node)
        else:
            self.last = self.last.successor(self.node)
        return self.last

    def observe(self, remote: Timestamp) -> None:
        """Move past ``remote`` (a timestamp received from another node)."""
        if remote > self.last:
            self.last = Timestamp(remote.wall_ms, remote.counter, self.node)
