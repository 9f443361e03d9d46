"""The kafka-python implementation of the Kafka client seam (``../client.py``).

It does what the seam says Kafka does. The workarounds for a broker's departures that need
kafka-python's insides are the section "Broker workarounds" below, ``holes.py`` and the bounded
transaction calls of ``writer.py``; the broker profile (``../brokers.py``) chooses them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict
from typing import Any

import kafka.errors as ke
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ..client import (
    FOLLOW_WAIT_MS,
    GroupReader,
    GroupTimeouts,
    Incoming,
    KafkaClient,
    Outgoing,
    Partitions,
    Reader,
    Security,
    TransactionalWriter,
)
from .errors import translated
from .holes import fill_holes
from .writer import CONNECT, TIMEOUT_MS, WRITE, KafkaPythonWriter, connection_config, offsets_of, sent

READ = {"enable_auto_commit": False, "isolation_level": "read_committed", "auto_offset_reset": "earliest"}
FETCH = {
    "fetch_max_bytes": 64 << 20,
    "max_partition_fetch_bytes": 16 << 20,
    "fetch_max_wait_ms": 20,  # short: a seek waits for the fetch in flight (readers that follow wait FOLLOW_WAIT_MS)
    "check_crcs": False,
}
CONSUME = {**READ, **FETCH, "request_timeout_ms": TIMEOUT_MS + 5000, "bootstrap_timeout_ms": TIMEOUT_MS}


# --- Broker workarounds: the ones that need kafka-python's insides (the broker profile chooses) ---------


class QuirkTolerantAdmin(KafkaAdminClient):  # type: ignore[misc]
    """Tansu answers DescribeGroups with authorized-operation bits kafka-python cannot parse: drop them (we never
    read them, so this is harmless under every broker)."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["authorized_operations"] = None
        return obj


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


class KafkaPythonClient(KafkaClient):
    """KafkaClient on kafka-python 3.x: one shared admin client, idempotent producer and ListOffsets consumers, made on
    first use. With ``hole_patience_s`` its readers wait that long at a hole in a fetch response (``holes.py``). Every
    client it makes connects with ``connection`` (the address and ``security``)."""

    def __init__(self, bootstrap: str, hole_patience_s: float | None = None, security: Security | None = None) -> None:
        self.bootstrap = bootstrap
        self.hole_patience_s = hole_patience_s
        self.connection = connection_config(bootstrap, security or Security())
        self._lock = threading.Lock()
        self._offsets_lock = threading.Lock()
        self._admin_client: QuirkTolerantAdmin | None = None
        self._producer: KafkaProducer | None = None
        self._offsets: dict[str, KafkaConsumer] = {}  # by isolation level

    def _admin(self) -> QuirkTolerantAdmin:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._admin_client = self._admin_client or QuirkTolerantAdmin(**self.connection, **CONNECT)
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
            self._producer = self._producer or KafkaProducer(**self.connection, linger_ms=2, **WRITE)
        with translated("producing"):
            futures = sent(self._producer, records)
            self._producer.flush(TIMEOUT_MS / 1000)
        return offsets_of(futures, "producing")

    def high_watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return self._list_offsets(topic, partitions, "read_uncommitted")

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return self._list_offsets(topic, partitions, "read_committed")

    def _list_offsets(self, topic: str, partitions: Sequence[int], isolation: str) -> dict[int, int]:
        """ListOffsets (latest) at ``isolation``, through a consumer of this client kept for it."""
        with self._offsets_lock, translated(f"listing the end offsets of {topic}"):
            consumer = self._offsets.get(isolation)
            if consumer is None:
                config = {**CONSUME, "isolation_level": isolation}
                consumer = self._offsets[isolation] = KafkaConsumer(**self.connection, **config)
            found = consumer.end_offsets([TopicPartition(topic, p) for p in partitions], TIMEOUT_MS)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    def _consumer(self, **config: Any) -> KafkaConsumer:
        with translated(f"connecting to Kafka at {self.bootstrap}"):
            consumer = KafkaConsumer(**self.connection, **{**CONSUME, **config})
        return consumer if self.hole_patience_s is None else fill_holes(consumer, self.hole_patience_s)

    def reader(self, max_fetch_bytes: int | None = None, max_wait_ms: int | None = None) -> Reader:
        sized = {} if max_fetch_bytes is None else {"max_partition_fetch_bytes": max_fetch_bytes}
        waits = {} if max_wait_ms is None else {"fetch_max_wait_ms": max_wait_ms}
        return KafkaPythonReader(self._consumer(max_poll_records=5000, **sized, **waits))

    def group_reader(
        self,
        topic: str,
        group: str,
        on_assigned: Partitions,
        on_revoked: Partitions,
        timeouts: GroupTimeouts,
        max_wait_ms: int = FOLLOW_WAIT_MS,
    ) -> GroupReader:
        waits = {"fetch_max_wait_ms": max_wait_ms, **asdict(timeouts)}
        member = self._consumer(group_id=group, max_poll_records=2000, **waits)
        with translated(f"subscribing to {topic}"):
            member.subscribe([topic], listener=Listener(on_assigned, on_revoked))
        return KafkaPythonGroupReader(member, topic)

    def writer(self, transactional_id: str) -> TransactionalWriter:
        return KafkaPythonWriter(self.connection, transactional_id)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=2)
            if self._admin_client is not None:
                self._admin_client.close()
            self._producer = self._admin_client = None
        with self._offsets_lock:
            for consumer in self._offsets.values():
                consumer.close(autocommit=False)
            self._offsets.clear()
