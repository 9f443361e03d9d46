"""The seam between the Kafka adapters and a Kafka client library: Kafka's contract, nothing else.

``log``, ``bus``, ``stream`` and ``index/`` see only the abstract classes here; the implementations
are ``confluent/`` (confluent-kafka, librdkafka) and ``kafka_python/`` (kafka-python), and
``bootstrap.kafka_connect`` picks one (SYNC_KAFKA_CLIENT); another library plugs in the same way.
Every method states what Kafka does; where a broker departs from it, the broker profile
(``brokers.py``, chosen by SYNC_KAFKA_BROKER) says so and holds the workaround. Implementations
raise our errors: fencing as WriterFenced, timeouts and lost brokers as LogUnavailable (a
transaction call that did not finish in time as TransactionTimedOut), settings the library refuses
(a bad CA file, a failed login) as ConfigurationError where it says so, anything else as LogError.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ...domain.errors import LogUnavailable

if TYPE_CHECKING:
    from .brokers import BrokerProfile

Header = tuple[str, bytes]
Partitions = Callable[[frozenset[int]], None]
FOLLOW_WAIT_MS = 500
"""How long a fetch of a reader that follows partitions (and seldom seeks) waits on the broker for a record:
long, so an idle reader sleeps on its fetch, where the broker answers at once when a record arrives (the
broker profile's ``follow_wait_ms`` says what to use on a broker that does not)."""


class TransactionTimedOut(LogUnavailable):
    """A commit, abort or send-offsets that did not finish in time: the transaction's outcome is unknown."""


class Connect(Protocol):
    """How the Kafka adapters reach a cluster: a client library's constructor and the broker's profile."""

    @property
    def broker(self) -> BrokerProfile:
        """The profile of the broker behind the bootstrap address."""

    def __call__(self, bootstrap: str) -> KafkaClient:
        """A new client of the cluster at ``bootstrap``."""


@dataclass(frozen=True, slots=True)
class Security:
    """How every producer, consumer and admin client of an adapter connects: the protocol, and the SASL login
    and CA file where it uses them (SYNC_KAFKA_SECURITY_PROTOCOL, SYNC_KAFKA_SASL_*, SYNC_KAFKA_SSL_CAFILE)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    @property
    def sasl(self) -> bool:
        """Whether clients log in with SASL."""
        return self.protocol.startswith("SASL_")

    @property
    def ssl(self) -> bool:
        """Whether connections are TLS."""
        return self.protocol.endswith("SSL")

    def config(self, names: Mapping[str, str]) -> dict[str, str | None]:
        """The settings in use, under a library's names (``names``: each field's name there)."""
        used: dict[str, str | None] = {"protocol": self.protocol}
        if self.sasl:
            used |= {"sasl_mechanism": self.sasl_mechanism, "sasl_username": self.sasl_username}
            used["sasl_password"] = self.sasl_password
        if self.ssl and self.ssl_cafile:
            used["ssl_cafile"] = self.ssl_cafile
        return {names[name]: value for name, value in used.items()}


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
    """Consumer-group liveness: how soon a silent or stuck member is dropped and its partitions reassigned."""

    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 30_000


class Reader(ABC):
    """Reads the partitions it is assigned from the offsets it is told, ``read_committed``: it returns only records
    of committed transactions (and plain ones), and never goes past the first record of a transaction still open
    (the last stable offset). Its position never moves past a record it has not returned."""

    @abstractmethod
    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        """Read exactly these partitions of ``topic`` from now on."""

    @abstractmethod
    def seek(self, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` on."""

    @abstractmethod
    def position(self, partition: int) -> int:
        """The offset of the next record ``poll`` returns from ``partition``: one past the last one it returned, or
        past offsets that hold no record to return (transaction markers, aborted records)."""

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
        """Make committing ``group``'s next offsets of ``topic`` part of the open transaction (WriterFenced or
        TransactionTimedOut as ``commit``)."""

    @abstractmethod
    def commit(self, timeout_s: float) -> None:
        """Commit the open transaction: WriterFenced if another writer took over, TransactionTimedOut if the broker
        did not answer within ``timeout_s``."""

    @abstractmethod
    def abort(self, timeout_s: float) -> None:
        """Abort the open transaction: WriterFenced if another writer took over, TransactionTimedOut if the broker
        did not answer within ``timeout_s``."""

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
    def high_watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """ListOffsets, ``read_uncommitted``: per partition, its high watermark (past every record written before this
        call, whether its transaction is committed, open or aborted). Appends nothing."""

    @abstractmethod
    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """ListOffsets, ``read_committed``: per partition, its last stable offset (past every record committed before
        this call, and not past an open transaction's first record). Appends nothing."""

    @abstractmethod
    def reader(self, max_fetch_bytes: int | None = None, max_wait_ms: int | None = None) -> Reader:
        """A new reader, for one thread: a fetch returns at most ``max_fetch_bytes`` per partition, and one with nothing
        to return waits up to ``max_wait_ms`` on the broker (short by default: a seek waits for a fetch in flight). A
        reader given ``max_wait_ms`` follows its partitions; one without reads them to an end, and may stop fetching
        there until it is polled again."""

    @abstractmethod
    def group_reader(
        self,
        topic: str,
        group: str,
        on_assigned: Partitions,
        on_revoked: Partitions,
        timeouts: GroupTimeouts,
        max_wait_ms: int = FOLLOW_WAIT_MS,
    ) -> GroupReader:
        """A new member of ``group`` subscribed to ``topic``, for one thread; its fetches wait up to ``max_wait_ms``."""

    @abstractmethod
    def writer(self, transactional_id: str) -> TransactionalWriter:
        """A new transactional writer (``init`` it to take over the id)."""

    @abstractmethod
    def close(self) -> None:
        """Release the shared connections."""


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
