"""Cutting fetch responses at a hole Tansu leaves (``infra/kafka_python_holes.py``): pure logic, no broker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kafka import TopicPartition

from syncbackbone.infra.kafka.kafka_python.holes import Holes, UpToHole

TP = TopicPartition("ns.events", 0)


@dataclass
class Batch:
    base_offset: int
    next_offset: int


class Response:
    """The record batches of one fetch response, as kafka-python's MemoryRecords hands them out."""

    def __init__(self, *batches: tuple[int, int]) -> None:
        self._batches = [Batch(*b) for b in batches]
        self.size = 42

    def next_batch(self) -> Batch | None:
        return self._batches.pop(0) if self._batches else None


def read(response: Response, fetch_offset: int, holes: Holes) -> list[int]:
    cut, bases = UpToHole(response, TP, fetch_offset, holes), []
    while (batch := cut.next_batch()) is not None:
        bases.append(batch.base_offset)
    return bases


def test_batches_that_follow_each_other_all_come_through() -> None:
    assert read(Response((10, 12), (12, 13), (13, 17)), 10, Holes(60)) == [10, 12, 13]


def test_a_fetch_from_inside_a_batch_is_no_hole() -> None:
    assert read(Response((10, 12), (12, 13)), 11, Holes(60)) == [10, 12]


def test_a_response_that_starts_past_the_fetch_offset_yields_nothing() -> None:
    assert read(Response((68, 69), (69, 70)), 64, Holes(60)) == []


def test_a_response_is_cut_at_a_hole_in_its_middle() -> None:
    assert read(Response((60, 64), (68, 69)), 60, Holes(60)) == [60]


def test_a_hole_is_read_past_once_it_outlasts_the_patience(caplog: pytest.LogCaptureFixture) -> None:
    holes = Holes(0.0)

    assert read(Response((60, 64), (68, 69)), 60, holes) == [60, 68]
    assert "offsets 64 to 67 never came" in caplog.text


def test_other_attributes_are_the_responses() -> None:
    assert UpToHole(Response(), TP, 0, Holes(60)).size == 42
