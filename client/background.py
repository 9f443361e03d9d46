"""The background sync loop, which outlives every failure: one step after another until ``stop``.

Invariant: the thread ends only when ``stop`` is called. Whatever a step raises (a server that
is down, a token refused, a locked SQLite file, a bug) is kept in ``last_error`` (its type, the
first line of its message, and when) and logged, and the step is tried again after a backoff
delay; the next step that succeeds clears it. ``wake`` cuts a wait short (a local edit was made).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from ..domain.errors import SyncBackboneError
from .resilience import Backoff

log = logging.getLogger(__name__)
EXPECTED = (SyncBackboneError, sqlite3.OperationalError)
"""Failures logged as INFO, without a traceback: the server or the file is not available now."""


class SyncLoop:
    """Runs a step in a daemon thread until stopped, with a backoff delay after each failure."""

    def __init__(self, backoff: Backoff, name: str = "sync-client") -> None:
        self.backoff, self.name = backoff, name
        self.last_error: dict[str, str] | None = None
        """The last failure (``type``, one-line ``message``, ``at``); None after a step that succeeded."""
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, step: Callable[[], None]) -> None:
        """Run ``step`` again and again in a thread until ``stop``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(step,), name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Cut the current wait short."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self, step: Callable[[], None]) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                step()
            except Exception as e:  # the loop outlives every failure; status() shows it
                self.last_error = error_record(e)
                delay = self.backoff.next_delay()
                expected = isinstance(e, EXPECTED)
                level, name = (logging.INFO if expected else logging.WARNING), type(e).__name__
                log.log(level, "sync failed (%s: %s); next try in %.2f s", name, e, delay, exc_info=not expected)
                self._wake.wait(delay)
            else:
                self.backoff.reset()
                self.last_error = None


def error_record(error: BaseException) -> dict[str, str]:
    """What ``status()`` shows of a failure: its type, the first line of its message, and when."""
    lines = str(error).strip().splitlines()
    message = lines[0][:300] if lines else ""
    return {"type": type(error).__name__, "message": message, "at": datetime.now(UTC).isoformat(timespec="seconds")}
