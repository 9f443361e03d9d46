"""A small progress line for long-running CLI work: done/total, rate, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``label: done/total unit (rate/s)``, redrawn at most ten times a second."""

    def __init__(self, label: str, total: int, unit: str = "items", out: TextIO | None = None) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done_count = 0
        self._out = out or sys.stderr
        self._started = time.perf_counter()
        self._drawn = 0.0

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done_count += n
        now = time.perf_counter()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(end="\r")

    def done(self) -> None:
        """Draw the final line."""
        self._draw(end="\n")

    def _draw(self, end: str) -> None:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = self.done_count / elapsed
        pct = 100 * self.done_count / self.total if self.total else 100.0
        self._out.write(
            f"  {self.label}: {self.done_count:,}/{self.total:,} {self.unit} ({pct:3.0f}%, {rate:,.0f}/s){end}"
        )
        self._out.flush()
