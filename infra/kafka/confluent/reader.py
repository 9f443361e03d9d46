"""Readers on confluent-kafka consumers: the seam's ``Reader`` and ``GroupReader``.

librdkafka fetches ahead in its own threads and hands records over one at a time, so a reader keeps
each partition's position itself: one past the last record it returned, moved past the offsets that
hold no record to return (transaction markers) when librdkafka reports the partition's end (EOF).
Where the broker profile waits at fetch holes (Tansu), every gap in what comes back is checked before
the reader moves past it (``gaps.py``). A reader with a short fetch wait rests a partition at its end
until it is polled again, as kafka-python's fetch-on-poll does: an idle reader does not ask the broker
every few milliseconds, and a seek does not wait for a fetch in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError, Message, TopicPartition

from ..client import GroupReader, Incoming, Partitions, Reader
from .errors import TIMEOUT_S, ours, translated
from .gaps import Gap, Gaps
from .records import incoming

END = KafkaError._PARTITION_EOF


class ConfluentReader(Reader):
    """Reader on a confluent-kafka consumer (see the module docstring). Offsets sought between ``assign`` and the
    next poll go into the assignment itself: librdkafka seeks only partitions it fetches already."""

    def __init__(self, consumer: Consumer, gaps: Gaps | None, rest_at_end: bool, topic: str = "") -> None:
        self._consumer, self._gaps, self._rests = consumer, gaps, rest_at_end
        self._topic = topic
        self._positions: dict[int, int] = {}
        self._ends: dict[int, int] = {}  # the end librdkafka last reported, by partition
        self._starts: dict[int, int] | None = None  # an assignment not handed to librdkafka yet
        self._resting: set[int] = set()  # paused at their end until the next poll

    def _tp(self, partition: int, offset: int = OFFSET_INVALID) -> TopicPartition:
        return TopicPartition(self._topic, partition, offset)

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._wake()
        self._topic = topic
        self._starts = {p: OFFSET_BEGINNING for p in partitions}
        self._positions, self._ends = {p: 0 for p in partitions}, {}

    def seek(self, partition: int, offset: int) -> None:
        self._positions[partition] = offset
        self._ends.pop(partition, None)
        if self._starts is not None and partition in self._starts:
            self._starts[partition] = offset
            return
        with translated(f"seeking {self._topic}-{partition}"):
            self._consumer.seek(self._tp(partition, offset))

    def position(self, partition: int) -> int:
        return self._positions.get(partition, 0)

    def poll(self, timeout_s: float, max_records: int = 5000) -> list[Incoming]:
        what = f"reading {self._topic}"
        with translated(what):
            self._wake()
            messages = self._fetched(timeout_s, max_records)
        by_partition: dict[int, list[Message]] = {}
        for m in messages:
            by_partition.setdefault(m.partition() or 0, []).append(m)
        records = [r for p in sorted(by_partition) for r in self._passed(p, by_partition[p], what)]
        if self._rests:
            self._rest()
        return records

    def _fetched(self, timeout_s: float, max_records: int) -> list[Message]:
        """What librdkafka has already, else what comes first within ``timeout_s`` (``consume`` would wait it out)."""
        if self._starts is not None:
            self._consumer.assign([self._tp(p, o) for p, o in self._starts.items()])
            self._starts = None
        messages: list[Message] = self._consumer.consume(max_records, 0)
        if not messages:
            first = self._consumer.poll(timeout_s)
            rest = self._consumer.consume(max_records - 1, 0) if first is not None and max_records > 1 else []
            messages = [] if first is None else [first, *rest]
        return messages

    def _passed(self, partition: int, messages: list[Message], what: str) -> list[Incoming]:
        """The records of ``partition`` among ``messages`` that the reader returns: up to its first hole, if any."""
        at = self._positions.get(partition)
        kept: list[Incoming] = []
        gaps: list[tuple[Gap, int]] = []  # each gap, and how many records came before it
        for m in messages:
            error, offset = m.error(), m.offset() or 0
            if error is not None and error.code() != END:
                raise ours(error, what)
            if at is not None and offset > at and self._gaps is not None and (error is None or offset > at + 1):
                gaps.append(((at, offset), len(kept)))
            if error is not None:
                self._ends[partition] = offset
                at = max(at or 0, offset)
            elif at is None or offset >= at:  # else fetched before a seek back
                kept.append(incoming(m))
                at = offset + 1
        hole = self._hole(partition, gaps)
        if hole is not None:
            (start, _), before = hole
            self.seek(partition, start)
            return kept[:before]
        if at is not None:
            self._positions[partition] = at
        return kept

    def _hole(self, partition: int, gaps: list[tuple[Gap, int]]) -> tuple[Gap, int] | None:
        """The gap to fetch ``partition`` again from (a hole), if any."""
        if not gaps or self._gaps is None:
            return None
        start = self._gaps.hole(self._topic, partition, [gap for gap, _ in gaps])
        return next((g for g in gaps if g[0][0] == start), None)

    def _rest(self) -> None:
        """Pause the partitions read to their end (until the next poll)."""
        ended = [p for p, end in self._ends.items() if self._positions.get(p) == end and p not in self._resting]
        if ended:
            with translated(f"pausing {self._topic}"):
                self._consumer.pause([self._tp(p) for p in ended])
            self._resting.update(ended)

    def _wake(self) -> None:
        """Resume the partitions resting at their end."""
        if self._resting:
            with translated(f"resuming {self._topic}"):
                self._consumer.resume([self._tp(p) for p in self._resting])
            self._resting.clear()

    def close(self) -> None:
        with suppress(Exception):  # closing is best effort
            self._consumer.close()
        if self._gaps is not None:
            with suppress(Exception):
                self._gaps.probe.close()


class ConfluentGroupReader(ConfluentReader, GroupReader):
    """GroupReader on a subscribed confluent-kafka consumer: positions are known once a partition was sought or
    returned a record (a freshly assigned one starts where the group committed)."""

    def subscribe(self, topic: str, on_assigned: Partitions, on_revoked: Partitions) -> None:
        """Join the group on ``topic``; the callbacks run inside ``poll``."""

        def assigned(_: Consumer, tps: list[TopicPartition]) -> None:
            on_assigned(frozenset(tp.partition for tp in tps))

        def revoked(_: Consumer, tps: list[TopicPartition]) -> None:
            for tp in tps:
                self._positions.pop(tp.partition, None)
                self._ends.pop(tp.partition, None)
            on_revoked(frozenset(tp.partition for tp in tps))

        self._topic = topic
        with translated(f"subscribing to {topic}"):
            self._consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def committed(self, partition: int) -> int | None:
        with translated(f"reading the committed offset of {self._topic}-{partition}"):
            (found,) = self._consumer.committed([self._tp(partition)], TIMEOUT_S)
        return None if found.offset < 0 else int(found.offset)

    def commit(self, offsets: Mapping[int, int]) -> None:
        with translated(f"committing offsets of {self._topic}"):
            self._consumer.commit(offsets=[self._tp(p, o) for p, o in offsets.items()], asynchronous=False)

    def pause(self, partitions: Sequence[int]) -> None:
        with translated(f"pausing {self._topic}"):
            self._consumer.pause([self._tp(p) for p in partitions])

    def resume(self, partitions: Sequence[int]) -> None:
        with translated(f"resuming {self._topic}"):
            self._consumer.resume([self._tp(p) for p in partitions])

    def group_metadata(self) -> object:
        return self._consumer.consumer_group_metadata()
