"""Retry pacing: exponential backoff with full jitter, and a circuit breaker.

The breaker is ``closed`` while requests succeed; after ``threshold`` failures in a row it
``open``s and fails fast with CircuitOpen; once ``reset_after_s`` has passed it is
``half_open`` and lets one probe through, whose every outcome settles it: a success or an
answer of the server (any other SyncBackboneError, e.g. a 4xx) closes it; ServerUnavailable,
or an exception that says nothing of the server (a local failure), opens it again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from ..domain.errors import SyncBackboneError
from .errors import CircuitOpen, ServerUnavailable

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]
MAX_DOUBLINGS = 64
"""Beyond this many failures in a row the delay no longer grows (and ``2.0**attempt`` cannot overflow)."""


class Backoff:
    """Delays that grow as ``base * 2**attempt`` up to ``cap``, each drawn uniformly below it (full jitter)."""

    def __init__(self, base_s: float = 0.2, cap_s: float = 30.0, rng: random.Random | None = None) -> None:
        self.base_s, self.cap_s = base_s, cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next retry; each call counts one more failure (any number of them)."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(self.attempt, MAX_DOUBLINGS))
        self.attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; half-opens after ``reset_after_s`` to probe."""

    def __init__(
        self, threshold: int = 5, reset_after_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold, self.reset_after_s = threshold, reset_after_s
        self.failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.reset_after_s else "open"

    def call(self, action: Callable[[], T]) -> T:
        """Run ``action`` unless the circuit is open; count its ServerUnavailable failures."""
        probe = self._admit()
        try:
            result = action()
        except ServerUnavailable:
            self._failed()
            raise
        except SyncBackboneError:
            self._succeeded()  # the server answered
            raise
        except BaseException:
            if probe:
                self._failed()  # the probe proved nothing: probe again after another wait
            raise
        self._succeeded()
        return result

    def _admit(self) -> bool:
        """Let a call through, or raise CircuitOpen; True when the call is the half-open probe."""
        with self._lock:
            state = self.state
            if state == "open" or (state == "half_open" and self._probing):
                wait = self.reset_after_s - (self._clock() - (self._opened_at or 0))
                raise CircuitOpen(f"circuit open after {self.failures} failures; next probe in {max(wait, 0):.1f} s")
            self._probing = state == "half_open"
            return self._probing

    def _failed(self) -> None:
        with self._lock:
            self.failures += 1
            self._probing = False
            if self.failures >= self.threshold or self._opened_at is not None:
                self._opened_at = self._clock()

    def _succeeded(self) -> None:
        with self._lock:
            self.failures, self._opened_at, self._probing = 0, None, False
