"""APScheduler jobs of a processor process: snapshots, periodically and when aggregates are due.

Two jobs, both on a small background thread pool:
- ``snapshot-periodic`` every SYNC_SNAPSHOT_INTERVAL_S: snapshot every aggregate the processor
  changed since its last snapshot (and anything still pending);
- ``snapshot-due``, a one-shot job added whenever the processor reports aggregates that are
  K events past their last snapshot; it drains the pending set until it is empty.
A job that fails logs the error and leaves the processor running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ...commands.snapshots import Snapshots

log = logging.getLogger(__name__)


class SnapshotScheduler:
    """Takes snapshots off the processor's thread, with APScheduler."""

    def __init__(self, snapshots: Snapshots, interval_s: float = 60.0) -> None:
        self._snapshots, self._interval_s = snapshots, interval_s
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None},
            daemon=True,
        )
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._running = 0

    def start(self) -> SnapshotScheduler:
        """Start the scheduler with the periodic job (none when the interval is 0)."""
        if self._interval_s > 0:
            self._scheduler.add_job(self.periodic, "interval", seconds=self._interval_s, id="snapshot-periodic")
        self._scheduler.start()
        return self

    def due(self, aggregate_ids: Iterable[str]) -> None:
        """Snapshot these aggregates soon (a one-shot job; called by the processor, never blocks it)."""
        with self._lock:
            self._pending.update(aggregate_ids)
        if self._scheduler.running:
            self._scheduler.add_job(self.take_pending, id="snapshot-due", replace_existing=True)

    def take_pending(self) -> int:
        """Snapshot the pending aggregates until none are left; return how many snapshots were taken."""
        taken = 0
        with self._lock:
            self._running += 1
        try:
            while batch := self._drain():
                taken += self._guarded(lambda: self._snapshots.take(batch), f"{len(batch)} due aggregates")
        finally:
            with self._lock:
                self._running -= 1
        return taken

    def periodic(self) -> int:
        """The periodic job: everything changed since its last snapshot, and what is pending."""
        return self._guarded(self._snapshots.take_dirty, "changed aggregates") + self.take_pending()

    def idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until nothing is pending or running; whether that happened within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._running:
                    return True
            time.sleep(0.02)
        return False

    def shutdown(self) -> None:
        """Stop the jobs, waiting for a running one to finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _drain(self) -> list[str]:
        with self._lock:
            batch, self._pending = sorted(self._pending), set()
        return batch

    def _guarded(self, job: Callable[[], int], what: str) -> int:
        try:
            return job()
        except Exception:  # a failed snapshot job is logged; the processor keeps going
            log.exception("snapshot job for %s failed", what)
            return 0
