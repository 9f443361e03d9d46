"""The next-version rule (G1) that both event logs check before an append."""

from __future__ import annotations

import pytest

from syncbackbone.commands.versions import check_next_versions
from syncbackbone.domain.errors import ConcurrencyConflict
from syncbackbone.domain.records import EventMeta, NewEvent

LOG = {"a": 2}


def events(*versions: tuple[str, int]) -> list[NewEvent]:
    return [NewEvent(agg, v, "DocumentPatched", b"", EventMeta(event_id=f"{agg}@{v}")) for agg, v in versions]


def current(aggregate_id: str) -> int:
    return LOG.get(aggregate_id, 0)


def test_each_event_must_follow_its_aggregates_latest_version_or_the_one_before_it_in_the_batch() -> None:
    check_next_versions(events(("a", 3), ("b", 1), ("a", 4), ("b", 2)), current)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([("a", 2)], "a version 2 cannot be appended: the next version is 3"),
        ([("b", 2)], "b version 2 cannot be appended: the next version is 1"),
        ([("a", 3), ("a", 5)], "a version 5 cannot be appended: the next version is 4"),
        ([("b", 1), ("b", 1)], "b version 1 cannot be appended: the next version is 2"),
    ],
)
def test_a_gap_or_a_taken_version_is_a_concurrency_conflict(batch: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(ConcurrencyConflict, match=message):
        check_next_versions(events(*batch), current)
