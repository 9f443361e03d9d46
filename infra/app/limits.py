"""Per-caller limits at the edge: a token bucket per key (rate), and a count of open streams per key.

Keys are principals (``tenant/subject``) or, for requests without a valid token, remote
addresses. Both structures are bounded: a key that has not been seen for a while is
forgotten first, so a flood of distinct keys cannot grow memory without end.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ...domain.errors import ConfigurationError, RateLimited
from ..common.bounded import trim

MAX_KEYS = 100_000


def parse_rate(text: str) -> tuple[int, float]:
    """``N/Ss`` as (N requests, per S seconds), or ConfigurationError."""
    m = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)s", text)
    if not m:
        raise ConfigurationError(f"rate limit {text[:40]!r} is not of the form N/Ss (e.g. 1000/60s)")
    return int(m.group(1)), float(m.group(2))


class RateLimiter:
    """A token bucket per key: ``capacity`` requests, refilled evenly over ``period_s``."""

    def __init__(self, capacity: int, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate = capacity, capacity / period_s
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, text: str) -> RateLimiter:
        """A limiter from a setting written ``N/Ss``."""
        return cls(*parse_rate(text))

    def take(self, key: str) -> None:
        """Spend one request of ``key``, or RateLimited saying when the next one is allowed."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.capacity), now))
            tokens = min(float(self.capacity), tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited("too many requests; slow down", retry_after_s=(1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)
            trim(self._buckets, MAX_KEYS)


class StreamSlots:
    """At most ``limit`` open streams (long-polls, SSE) per key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> Callable[[], None]:
        """Take a slot of ``key`` (RateLimited when all are taken); returns what gives it back, once."""
        with self._lock:
            if self._open.get(key, 0) >= self.limit:
                raise RateLimited(f"at most {self.limit} open streams per caller", retry_after_s=1.0)
            self._open[key] = self._open.get(key, 0) + 1
        held = [True]  # a flag, not a threading.Event: thousands of waiting clients acquire and release

        def release() -> None:
            with self._lock:
                if not held[0]:
                    return
                held[0] = False
                self._open[key] -= 1
                if not self._open[key]:
                    del self._open[key]

        return release

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """One slot of ``key`` for the duration of the block, or RateLimited when all are taken."""
        release = self.acquire(key)
        try:
            yield
        finally:
            release()

    def count(self) -> int:
        """Open streams in all."""
        with self._lock:
            return sum(self._open.values())
