"""Bounded memory for what a process keeps per command id: past a cap, the oldest entries go first."""

from __future__ import annotations

from typing import TypeVar

V = TypeVar("V")


def trim(kept: dict[str, V], cap: int) -> None:
    """Forget the oldest entries of ``kept`` (in insertion order) beyond ``cap``."""
    while len(kept) > cap:
        del kept[next(iter(kept))]
