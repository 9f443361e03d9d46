"""Between confluent-kafka and our types: errors translated to ours, delivery reports, incoming records."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ..domain.errors import LogError, LogUnavailable, SyncBackboneError, WriterFenced
from .kafka_client import Incoming, Outgoing

TIMEOUT_S = 10.0
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
TRANSIENT = {KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT}


def ours(error: KafkaError, what: str, timeout_fences: bool = False) -> SyncBackboneError:
    """Our error for a librdkafka error: WriterFenced (fenced, fatal, or a timeout where the contract says
    so), LogUnavailable (retriable, timeouts, lost brokers) or LogError."""
    code = error.code()
    if code in FENCED or error.fatal() or (timeout_fences and code in TRANSIENT):
        return WriterFenced(f"{what}: another writer took over: {error}")
    if error.retriable() or code in TRANSIENT:
        return LogUnavailable(f"{what}: the Kafka cluster is unavailable: {error}")
    return LogError(f"{what}: {error}")


def from_exception(e: BaseException, what: str, timeout_fences: bool) -> SyncBackboneError:
    error = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    return LogError(f"{what}: {e}") if error is None else ours(error, what, timeout_fences)


@contextmanager
def translated(what: str, timeout_fences: bool = False) -> Iterator[None]:
    """Re-raise confluent-kafka errors as ours, ``from`` the original. confluent-kafka quirk: once a
    producer hit a fatal error, flush runs delivery callbacks with that error pending and raises
    SystemError (the KafkaException is its cause, or is lost)."""
    try:
        yield
    except SyncBackboneError:
        raise
    except KafkaException as e:
        raise from_exception(e, what, timeout_fences) from e
    except SystemError as e:
        raise from_exception(e.__cause__ or e, what, timeout_fences) from e
    except BufferError as e:
        raise LogUnavailable(f"{what}: the producer queue is full: {e}") from e


class Deliveries:
    """The delivery reports of the records of one call: their offsets, or the first error."""

    def __init__(self, count: int) -> None:
        self.offsets: list[int] = [-1] * count
        self.error: KafkaError | None = None
        self._reported: list[int] = []  # list.append is atomic: another thread's flush may serve reports

    def callback(self, index: int) -> Any:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self.error = self.error or error
            else:
                self.offsets[index] = message.offset() or 0
            self._reported.append(index)

        return delivered

    def wait(self, producer: Producer, what: str, timeout_s: float = TIMEOUT_S) -> list[int]:
        """Flush ``producer`` until every report arrived; the offsets, else the first error."""
        deadline = time.monotonic() + timeout_s
        try:
            with translated(what):
                producer.flush(timeout_s)
                while len(self._reported) < len(self.offsets) and time.monotonic() < deadline:
                    producer.poll(0.005)
        except LogError:
            if self.error is None:
                raise  # else the delivery error, raised below, says more
        if self.error is not None:
            raise ours(self.error, what)
        if len(self._reported) < len(self.offsets):
            raise LogUnavailable(f"{what}: a record was not acknowledged in time")
        return self.offsets


def produced(producer: Producer, records: Sequence[Outgoing], what: str) -> Deliveries:
    """Hand ``records`` to ``producer``; their pending delivery reports."""
    reports = Deliveries(len(records))
    produce = producer.produce
    with translated(what):
        for i, r in enumerate(records):
            h: list[tuple[str, str | bytes | None]] | None = list(r.headers) or None
            produce(r.topic, r.value, r.key, r.partition, reports.callback(i), timestamp=r.timestamp_ms or 0, headers=h)
    return reports


def incoming(message: Message) -> Incoming:
    raw = message.headers() or ()
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple((k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs)
    partition, offset = message.partition() or 0, message.offset() or 0
    return Incoming(partition, offset, message.key(), message.value() or b"", headers, message.timestamp()[1])
