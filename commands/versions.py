"""The next-version rule of every event log (G1): an aggregate's events are versions 1, 2, ... n, no gap."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..domain.errors import ConcurrencyConflict
from ..domain.records import NewEvent


def check_next_versions(events: Sequence[NewEvent], current: Callable[[str], int]) -> None:
    """Raise ConcurrencyConflict unless each event is its aggregate's next version.

    ``current(aggregate_id)`` is the aggregate's latest version in the log (0 if it has none);
    an earlier event of the same batch counts as appended.
    """
    latest: dict[str, int] = {}
    for e in events:
        expected = (latest[e.aggregate_id] if e.aggregate_id in latest else current(e.aggregate_id)) + 1
        if e.version != expected:
            raise ConcurrencyConflict(
                f"{e.aggregate_id} version {e.version} cannot be appended: the next version is {expected}"
            )
        latest[e.aggregate_id] = e.version
