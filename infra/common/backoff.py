"""Waiting with exponential back-off: the one polling loop of the project.

``poll(attempt, timeout_s)`` calls ``attempt`` until it returns something truthy or the
time is up, sleeping ``first``, then twice as long, up to ``cap`` between calls (never past
the deadline). It always calls ``attempt`` at least once and returns its last answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def pauses(first: float, cap: float) -> Callable[[], float]:
    """A source of pauses: ``first``, then doubled on every call, at most ``cap``."""
    state = [first]

    def next_pause() -> float:
        pause = state[0]
        state[0] = min(pause * 2, cap)
        return pause

    return next_pause


def poll(attempt: Callable[[], T], timeout_s: float, first: float = 0.002, cap: float = 0.05) -> T:
    """``attempt()`` until it is truthy or ``timeout_s`` passed, backing off between calls; its last answer."""
    deadline = time.monotonic() + timeout_s
    pause = pauses(first, cap)
    while True:
        answer = attempt()
        remaining = deadline - time.monotonic()
        if answer or remaining <= 0:
            return answer
        time.sleep(min(pause(), remaining))
