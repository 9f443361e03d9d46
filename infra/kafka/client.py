"""The seam between the Kafka adapters and a Kafka client library.

``kafka_log``, ``kafka_bus`` and ``kafka_stream`` see only the abstract classes here; the
implementation is ``kafka_python.py`` (kafka-python); another library plugs in by implementing
them and being returned by ``bootstrap.kafka_connect``.
Implementations raise our errors: fencing as WriterFenced, timeouts and lost brokers as
LogUnavailable, anything else as LogError. The catch-up marker (the workaround for Tansu's
wrong ListOffsets high watermark) lives here because it only needs the seam.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ...domain.errors import LogUnavailable

Header = tuple[str, bytes]
Partitions = Callable[[frozenset[int]], None]
Connect = Callable[[str], "KafkaClient"]
"""Makes the client of a bootstrap address (e.g. ``KafkaPythonClient``)."""
MARKER = ("type", b"__marker__")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to produce (the timestamp is the one readers will see)."""

    topic: str
    partition: int
    value: bytes
    key: bytes | None = None
    headers: Sequence[Header] = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A record read from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class GroupTimeouts:
    """Consumer-group liveness (Tansu makes joins wait the rebalance timeout: keep them short in tests)."""

    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 30_000


class Reader(ABC):
    """Reads the partitions it is assigned from the offsets it is told (committed transactions only)."""

    @abstractmethod
    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        """Read exactly these partitions of ``topic`` from now on."""

    @abstractmethod
    def seek(self, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` on."""

    @abstractmethod
    def position(self, partition: int) -> int:
        """The offset of the next record that will be read from ``partition``, or a lower bound of it."""

    @abstractmethod
    def poll(self, timeout_s: float, max_records: int = 5000) -> list[Incoming]:
        """The next records, in partition order and offset order within a partition (maybe none)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


class GroupReader(Reader):
    """A member of a consumer group on one topic; the assignment callbacks run inside ``poll``."""

    @abstractmethod
    def committed(self, partition: int) -> int | None:
        """The group's committed offset of ``partition`` (None if it never committed one)."""

    @abstractmethod
    def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit the next offsets to read, outside any transaction."""

    @abstractmethod
    def pause(self, partitions: Sequence[int]) -> None:
        """Stop fetching these partitions until they are resumed."""

    @abstractmethod
    def resume(self, partitions: Sequence[int]) -> None:
        """Fetch these partitions again."""

    @abstractmethod
    def group_metadata(self) -> object:
        """What a transactional writer needs to commit this member's offsets (it fences stale members)."""


class TransactionalWriter(ABC):
    """A transactional producer: the single writer of whatever its transactional id stands for."""

    @abstractmethod
    def init(self) -> None:
        """Take over the transactional id, fencing any older writer with the same id."""

    @abstractmethod
    def begin(self) -> None:
        """Start a transaction."""

    @abstractmethod
    def send(self, records: Sequence[Outgoing]) -> list[int]:
        """Write ``records`` in the open transaction and wait for their offsets."""

    @abstractmethod
    def send_later(self, records: Sequence[Outgoing]) -> None:
        """Write ``records`` in the open transaction without waiting (``commit`` checks them)."""

    @abstractmethod
    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        """Make committing ``group``'s next offsets of ``topic`` part of the open transaction."""

    @abstractmethod
    def commit(self, timeout_s: float) -> None:
        """Commit the open transaction within ``timeout_s``, else raise WriterFenced."""

    @abstractmethod
    def abort(self, timeout_s: float) -> None:
        """Abort the open transaction within ``timeout_s``, else raise WriterFenced."""

    @abstractmethod
    def close(self) -> None:
        """Drop the producer without waiting."""


class KafkaClient(ABC):
    """One cluster: topic admin, plain produce, and the readers and writers above."""

    @abstractmethod
    def ensure_topics(self, topics: Mapping[str, Mapping[str, str]], partitions: int) -> dict[str, int]:
        """Create the missing topics (name -> configs) with ``partitions``; each topic's real partition count."""

    @abstractmethod
    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has (None if it does not exist)."""

    @abstractmethod
    def group_members(self, group: str) -> int:
        """How many members consumer group ``group`` has now (0 if it is empty or unknown)."""

    @abstractmethod
    def produce(self, records: Sequence[Outgoing]) -> list[int]:
        """Write ``records`` (not transactionally) and wait for all; the offset of each."""

    @abstractmethod
    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """Per partition, an offset past every record committed before this call: read up to it to catch up."""

    @abstractmethod
    def reader(self, max_fetch_bytes: int | None = None) -> Reader:
        """A new reader, for one thread (fetching at most ``max_fetch_bytes`` per partition at a time, if given)."""

    @abstractmethod
    def group_reader(
        self, topic: str, group: str, on_assigned: Partitions, on_revoked: Partitions, timeouts: GroupTimeouts
    ) -> GroupReader:
        """A new member of ``group`` subscribed to ``topic``, for one thread."""

    @abstractmethod
    def writer(self, transactional_id: str) -> TransactionalWriter:
        """A new transactional writer (``init`` it to take over the id)."""

    @abstractmethod
    def close(self) -> None:
        """Release the shared connections."""


def is_marker(record: Incoming) -> bool:
    """Whether ``record`` is a catch-up marker (empty value, header type=__marker__), which readers skip."""
    return not record.value and MARKER in record.headers


def read_until(reader: Reader, ends: Mapping[int, int], timeout_s: float = 30.0) -> Iterator[Incoming]:
    """The records of the assigned partitions until each partition's position reaches its end in ``ends``."""
    pending = {p: end for p, end in ends.items() if reader.position(p) < end}
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            where = ", ".join(f"{p}: at {reader.position(p)} of {end}" for p, end in sorted(pending.items()))
            raise LogUnavailable(f"partitions could not be read to their end in {timeout_s} s ({where})")
        yield from reader.poll(0.1)
        pending = {p: end for p, end in pending.items() if reader.position(p) < end}


# --- Tansu quirk: the end of a partition is found with a marker, never with ListOffsets ---------------


def append_end_markers(client: KafkaClient, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """Tansu's ListOffsets high watermark is too low after batched produce, so it is never asked: we append
    an empty marker record to each partition and read up to it (readers skip markers)."""
    headers = (MARKER, ("marker_id", uuid.uuid4().hex.encode()))
    offsets = client.produce([Outgoing(topic, p, b"", None, headers) for p in partitions])
    return {p: offset + 1 for p, offset in zip(partitions, offsets, strict=True)}
