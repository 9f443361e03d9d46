"""Between confluent-kafka and the seam's records: producing with delivery reports, and incoming messages."""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message, Producer

from ....domain.errors import LogError, LogUnavailable
from ..client import Incoming, Outgoing
from .errors import TIMEOUT_S, ours, translated


class Deliveries:
    """The delivery reports of the records of one call: their offsets, or the first error. librdkafka reports the
    records of a partition in the order they were produced, so one callback serves them all."""

    def __init__(self, partitions: Sequence[int]) -> None:
        self.partitions = partitions
        self.error: KafkaError | None = None
        self._reported: dict[int, list[int]] = {}  # setdefault and append are atomic: another thread's flush may serve

    def delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.error = self.error or error
        self._reported.setdefault(message.partition() or 0, []).append(message.offset() or 0)

    @property
    def count(self) -> int:
        """How many reports arrived."""
        return sum(len(offsets) for offsets in list(self._reported.values()))

    def wait(self, producer: Producer, what: str, timeout_s: float = TIMEOUT_S) -> list[int]:
        """Flush ``producer`` until every report arrived; the offsets, else the first error."""
        deadline = time.monotonic() + timeout_s
        try:
            with translated(what):
                producer.flush(timeout_s)
                while self.count < len(self.partitions) and time.monotonic() < deadline:
                    producer.poll(0.005)
        except LogError:
            if self.error is None:
                raise  # else the delivery error, raised below, says more
        if self.error is not None:
            raise ours(self.error, what)
        if self.count < len(self.partitions):
            raise LogUnavailable(f"{what}: a record was not acknowledged in time")
        taken = {p: iter(offsets) for p, offsets in self._reported.items()}
        return [next(taken[p]) for p in self.partitions]


def produced(producer: Producer, records: Sequence[Outgoing], what: str) -> Deliveries:
    """Hand ``records`` to ``producer``; their pending delivery reports."""
    reports = Deliveries([r.partition for r in records])
    produce, delivered = producer.produce, reports.delivered
    with translated(what):
        for r in records:
            headers: list[tuple[str, str | bytes | None]] | None = [*r.headers] or None
            produce(r.topic, r.value, r.key, r.partition, delivered, timestamp=r.timestamp_ms or 0, headers=headers)
    return reports


def incoming(message: Message) -> Incoming:
    """The seam's record of a message (headers as ``(name, bytes)``; librdkafka hands them over as a list)."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple((k, v.encode() if isinstance(v, str) else (v or b"")) for k, v in pairs)
    offset, partition = message.offset() or 0, message.partition() or 0
    return Incoming(partition, offset, message.key(), message.value() or b"", headers, message.timestamp()[1])
