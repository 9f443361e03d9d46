"""The kafka-python implementation of the Kafka client seam (``../client.py``).

It does what the seam says Kafka does. The workarounds for a broker's departures that need
kafka-python's insides live in the section "Broker workarounds" below and in ``holes.py``; the
broker profile (``../brokers.py``) chooses them: a commit, abort or send-offsets is bounded by its
timeout (TransactionTimedOut after it), and readers wait at fetch holes for ``hole_patience_s``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict
from typing import Any

import kafka.errors as ke
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ....domain.errors import LogError, LogUnavailable, SyncBackboneError, WriterFenced
from ..client import (
    GroupReader,
    GroupTimeouts,
    Header,
    Incoming,
    KafkaClient,
    Outgoing,
    Partitions,
    Reader,
    TransactionalWriter,
    TransactionTimedOut,
)
from .holes import fill_holes

TIMEOUT_MS = 10_000
CONNECT = {"request_timeout_ms": TIMEOUT_MS, "bootstrap_timeout_ms": TIMEOUT_MS}
WRITE = {"enable_idempotence": True, "acks": "all", "batch_size": 1 << 20, "max_block_ms": TIMEOUT_MS, **CONNECT}
READ = {"enable_auto_commit": False, "isolation_level": "read_committed", "auto_offset_reset": "earliest"}
FETCH = {
    "fetch_max_bytes": 64 << 20,
    "max_partition_fetch_bytes": 16 << 20,
    "fetch_max_wait_ms": 20,
    "check_crcs": False,
}
CONSUME = {**READ, **FETCH, "request_timeout_ms": TIMEOUT_MS + 5000, "bootstrap_timeout_ms": TIMEOUT_MS}


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Re-raise kafka-python errors as ours: WriterFenced, LogUnavailable (transient) or LogError."""
    try:
        yield
    except SyncBackboneError:
        raise
    except ke.KafkaError as e:
        if isinstance(e, ke.ProducerFencedError | ke.InvalidProducerEpochError) or "Fenced" in str(e):
            raise WriterFenced(f"{what}: another writer took over: {e}") from e
        if e.retriable:
            raise LogUnavailable(f"{what}: the Kafka cluster is unavailable: {e}") from e
        raise LogError(f"{what}: {e}") from e


def sent(producer: KafkaProducer, records: Sequence[Outgoing]) -> list[Any]:
    """Hand ``records`` to ``producer``; their futures."""
    send = producer.send
    return [send(r.topic, r.value, r.key, as_list(r.headers), r.partition, r.timestamp_ms) for r in records]


def as_list(headers: Sequence[Header]) -> list[Header]:
    """kafka-python wants headers as a list."""
    return headers if isinstance(headers, list) else list(headers)


def offsets_of(futures: Sequence[Any], what: str) -> list[int]:
    """The offsets of produce futures after a flush; the first failure is raised as ours."""
    for future in futures:
        if not future.is_done:
            raise LogUnavailable(f"{what}: a record was not acknowledged in time")
        if future.failed():
            with translated(what):
                raise future.exception
    return [future.value.offset for future in futures]


# --- Broker workarounds: the ones that need kafka-python's insides (the broker profile chooses) ---------


class QuirkTolerantAdmin(KafkaAdminClient):  # type: ignore[misc]
    """Tansu answers DescribeGroups with authorized-operation bits kafka-python cannot parse: drop them (we never
    read them, so this is harmless under every broker)."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["authorized_operations"] = None
        return obj


def bounded_wait(producer: KafkaProducer, begin: Callable[[], Any], what: str, timeout_s: float) -> None:
    """Start a commit, abort or send-offsets ourselves and wait at most ``timeout_s`` for it (kafka-python's own
    calls retry without end when a broker drops the connection, as Tansu does to a fenced producer)."""
    with translated(what):
        result = begin()
        producer._sender.wakeup()
        finished = result.wait(timeout_ms=timeout_s * 1000)
    if not finished:
        raise TransactionTimedOut(f"{what} did not finish within {timeout_s} s")


# --- kafka-python ------------------------------------------------------------------------------------------


class KafkaPythonReader(Reader):
    """Reader on a kafka-python consumer."""

    def __init__(self, consumer: KafkaConsumer, topic: str = "") -> None:
        self._consumer = consumer
        self._topic = topic

    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self._topic, partition)

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._topic = topic
        with translated(f"assigning {topic}"):
            self._consumer.assign([self._tp(p) for p in partitions])

    def seek(self, partition: int, offset: int) -> None:
        self._consumer.seek(self._tp(partition), offset)

    def position(self, partition: int) -> int:
        with translated(f"reading the position in {self._topic}-{partition}"):
            return int(self._consumer.position(self._tp(partition)))

    def poll(self, timeout_s: float, max_records: int = 5000) -> list[Incoming]:
        with translated(f"reading {self._topic}"):
            batches = self._consumer.poll(int(timeout_s * 1000), max_records=max_records)
        return [
            Incoming(tp.partition, r.offset, r.key, r.value or b"", tuple(r.headers), r.timestamp)
            for tp, records in sorted(batches.items(), key=lambda item: item[0].partition)
            for r in records
        ]

    def close(self) -> None:
        with suppress(Exception):  # closing is best effort
            self._consumer.close(autocommit=False)


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """kafka-python's rebalance callbacks, passed on as partition sets."""

    def __init__(self, on_assigned: Partitions, on_revoked: Partitions) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._on_revoked(frozenset(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._on_assigned(frozenset(tp.partition for tp in assigned))


class KafkaPythonGroupReader(KafkaPythonReader, GroupReader):
    """GroupReader on a subscribed kafka-python consumer."""

    def committed(self, partition: int) -> int | None:
        with translated(f"reading the committed offset of {self._topic}-{partition}"):
            found = self._consumer.committed(self._tp(partition))
        return None if found is None else int(found)

    def commit(self, offsets: Mapping[int, int]) -> None:
        with translated(f"committing offsets of {self._topic}"):
            self._consumer.commit({self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})

    def pause(self, partitions: Sequence[int]) -> None:
        self._consumer.pause(*(self._tp(p) for p in partitions))

    def resume(self, partitions: Sequence[int]) -> None:
        self._consumer.resume(*(self._tp(p) for p in partitions))

    def group_metadata(self) -> object:
        return self._consumer.group_metadata()


class KafkaPythonWriter(TransactionalWriter):
    """TransactionalWriter on a transactional kafka-python producer."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        self.transactional_id = transactional_id
        with translated(f"connecting writer {transactional_id}"):
            self._producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id, **WRITE)
        self._later: list[Any] = []

    def init(self) -> None:
        with translated(f"initialising writer {self.transactional_id}"):
            self._producer.init_transactions()

    def begin(self) -> None:
        self._later = []
        with translated(f"beginning a transaction of {self.transactional_id}"):
            self._producer.begin_transaction()

    def send(self, records: Sequence[Outgoing]) -> list[int]:
        what = f"writing in a transaction of {self.transactional_id}"
        with translated(what):
            futures = sent(self._producer, records)
            self._producer.flush(TIMEOUT_MS / 1000)
        return offsets_of(futures, what)  # flush does not raise: a fenced send shows only in its future

    def send_later(self, records: Sequence[Outgoing]) -> None:
        with translated(f"writing in a transaction of {self.transactional_id}"):
            self._later.extend(sent(self._producer, records))

    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        positions = {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
        manager = self._producer._transaction_manager
        begin = lambda: manager.send_offsets_to_transaction(positions, group.group_metadata())  # noqa: E731
        bounded_wait(self._producer, begin, f"sending offsets in a transaction of {self.transactional_id}", timeout_s)

    def commit(self, timeout_s: float) -> None:
        what = f"committing a transaction of {self.transactional_id}"
        with translated(what):
            self._producer.flush(timeout_s)
        offsets_of(self._later, what)
        bounded_wait(self._producer, self._producer._transaction_manager.begin_commit, what, timeout_s)

    def abort(self, timeout_s: float) -> None:
        what = f"aborting a transaction of {self.transactional_id}"
        bounded_wait(self._producer, self._producer._transaction_manager.begin_abort, what, timeout_s)

    def close(self) -> None:
        with suppress(Exception):  # a fenced producer may fail to close; it is dropped either way
            self._producer.close(timeout=0, null_logger=True)


class KafkaPythonClient(KafkaClient):
    """KafkaClient on kafka-python 3.x: one shared admin client, idempotent producer and ListOffsets consumer, made on
    first use. With ``hole_patience_s`` its readers wait that long at a hole in a fetch response (``holes.py``)."""

    def __init__(self, bootstrap: str, hole_patience_s: float | None = None) -> None:
        self.bootstrap = bootstrap
        self.hole_patience_s = hole_patience_s
        self._lock = threading.Lock()
        self._offsets_lock = threading.Lock()
        self._admin_client: QuirkTolerantAdmin | None = None
        self._producer: KafkaProducer | None = None
        self._offsets: KafkaConsumer | None = None

    def _admin(self) -> QuirkTolerantAdmin:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._admin_client = self._admin_client or QuirkTolerantAdmin(bootstrap_servers=self.bootstrap, **CONNECT)
            return self._admin_client

    def ensure_topics(self, topics: Mapping[str, Mapping[str, str]], partitions: int) -> dict[str, int]:
        for name, configs in topics.items():
            if self.partition_count(name) is None:
                spec = {"num_partitions": partitions, "replication_factor": 1, "configs": dict(configs)}
                with translated(f"creating topic {name}"), suppress(ke.TopicAlreadyExistsError):
                    self._admin().create_topics({name: spec}, wait_for_metadata=True)
        return {name: self.partition_count(name) or 0 for name in topics}

    def partition_count(self, topic: str) -> int | None:
        with translated(f"describing topic {topic}"):
            (found,) = self._admin().describe_topics([topic])
        return len(found["partitions"]) if found["error_code"] == 0 and found["partitions"] else None

    def group_members(self, group: str) -> int:
        with translated(f"describing group {group}"):
            found = self._admin().describe_groups([group]).get(group) or {}
        return 0 if found.get("group_state") in (None, "Empty", "Dead") else len(found.get("members") or ())

    def produce(self, records: Sequence[Outgoing]) -> list[int]:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._producer = self._producer or KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=2, **WRITE)
        with translated("producing"):
            futures = sent(self._producer, records)
            self._producer.flush(TIMEOUT_MS / 1000)
        return offsets_of(futures, "producing")

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        with self._offsets_lock, translated(f"listing the end offsets of {topic}"):
            self._offsets = self._offsets or KafkaConsumer(bootstrap_servers=self.bootstrap, **CONSUME)
            found = self._offsets.end_offsets([TopicPartition(topic, p) for p in partitions], TIMEOUT_MS)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    def _consumer(self, **config: Any) -> KafkaConsumer:
        with translated(f"connecting to Kafka at {self.bootstrap}"):
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, **{**CONSUME, **config})
        return consumer if self.hole_patience_s is None else fill_holes(consumer, self.hole_patience_s)

    def reader(self, max_fetch_bytes: int | None = None) -> Reader:
        sized = {} if max_fetch_bytes is None else {"max_partition_fetch_bytes": max_fetch_bytes}
        return KafkaPythonReader(self._consumer(max_poll_records=5000, **sized))

    def group_reader(
        self, topic: str, group: str, on_assigned: Partitions, on_revoked: Partitions, timeouts: GroupTimeouts
    ) -> GroupReader:
        member = self._consumer(group_id=group, max_poll_records=2000, **asdict(timeouts))
        with translated(f"subscribing to {topic}"):
            member.subscribe([topic], listener=Listener(on_assigned, on_revoked))
        return KafkaPythonGroupReader(member, topic)

    def writer(self, transactional_id: str) -> TransactionalWriter:
        return KafkaPythonWriter(self.bootstrap, transactional_id)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=2)
            if self._admin_client is not None:
                self._admin_client.close()
            self._producer = self._admin_client = None
        with self._offsets_lock:
            if self._offsets is not None:
                self._offsets.close(autocommit=False)
            self._offsets = None
