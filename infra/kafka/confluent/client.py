"""The confluent-kafka (librdkafka) implementation of the Kafka client seam (``../client.py``).

librdkafka does the protocol work in C threads without the GIL, so the transactions of several
partitions overlap for real. It does what the seam says Kafka does; the workarounds for a broker's
departures that need librdkafka's ways are the section "Broker workarounds" below and the gap
checks of ``gaps.py`` (the broker profile, ``../brokers.py``, chooses them). Errors are translated in
``errors.py``, records in ``records.py``; the readers are in ``reader.py``, the writer in ``writer.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]  # exported, not marked so
from confluent_kafka.cimpl import NewTopic

from ..client import (
    FOLLOW_WAIT_MS,
    GroupReader,
    GroupTimeouts,
    KafkaClient,
    Outgoing,
    Partitions,
    Reader,
    Security,
    TransactionalWriter,
)
from .errors import TIMEOUT_S, connection_config, translated
from .gaps import GapProbe, Gaps
from .reader import ConfluentGroupReader, ConfluentReader
from .records import produced
from .writer import WRITE, ConfluentWriter

READ = {"enable.auto.commit": False, "isolation.level": "read_committed", "auto.offset.reset": "earliest"}
FETCH = {"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20, "enable.partition.eof": True}
SHORT_WAIT_MS = 20
"""A reader's fetch wait unless told otherwise: short, so a seek does not wait long for a fetch in flight."""
PROBE = {"isolation.level": "read_uncommitted", "fetch.wait.max.ms": 1}


# --- Broker workarounds: the ones that need librdkafka's ways (the broker profile chooses) ------------


def live_members(state: str, listed: int) -> int:
    """Tansu's DescribeGroups members do not come through librdkafka (a stable group lists none): a group in a live
    state (stable or rebalancing) has at least one member, so count one then (harmless under every broker)."""
    return 0 if state in ("EMPTY", "DEAD", "UNKNOWN") else max(listed, 1)


# --- confluent-kafka ---------------------------------------------------------------------------------------


class ConfluentClient(KafkaClient):
    """KafkaClient on confluent-kafka 2.x: one shared admin client and idempotent producer, made on first use. With
    ``hole_patience_s`` its readers check the gaps librdkafka steps over and wait that long at a hole (``gaps.py``).
    Every client it makes connects with ``connection`` (the address and ``security``)."""

    def __init__(self, bootstrap: str, hole_patience_s: float | None = None, security: Security | None = None) -> None:
        self.bootstrap = bootstrap
        self.hole_patience_s = hole_patience_s
        self.connection = connection_config(bootstrap, security or Security())
        self._lock = threading.Lock()
        self._admin_client: AdminClient | None = None
        self._producer: Producer | None = None

    def _admin(self) -> AdminClient:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._admin_client = self._admin_client or AdminClient(dict(self.connection))
            return self._admin_client

    def ensure_topics(self, topics: Mapping[str, Mapping[str, str]], partitions: int) -> dict[str, int]:
        missing = [NewTopic(t, partitions, 1, config=dict(c)) for t, c in topics.items() if not self.partition_count(t)]
        futures = self._admin().create_topics(missing, request_timeout=TIMEOUT_S) if missing else {}
        for name, future in futures.items():
            with translated(f"creating topic {name}"):
                if (error := future.exception()) and error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise error
        return {name: self._partitions_once_known(name) for name in topics}

    def _partitions_once_known(self, topic: str) -> int:
        """The partition count of a topic, waiting until the metadata shows a topic just created."""
        deadline = time.monotonic() + TIMEOUT_S
        while (count := self.partition_count(topic)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return count or 0

    def partition_count(self, topic: str) -> int | None:
        with translated(f"describing topic {topic}"):  # all topics: asking for one may auto-create it
            found = self._admin().list_topics(timeout=TIMEOUT_S).topics.get(topic)
        return len(found.partitions) if found is not None and found.error is None and found.partitions else None

    def group_members(self, group: str) -> int:
        with translated(f"describing group {group}"):
            found = self._admin().describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
        return live_members(found.state.name, len(found.members or ()))

    def produce(self, records: Sequence[Outgoing]) -> list[int]:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._producer = self._producer or Producer({**self.connection, **WRITE})
        return produced(self._producer, records, "producing").wait(self._producer, "producing")

    def high_watermarks(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return self._list_offsets(topic, partitions, IsolationLevel.READ_UNCOMMITTED)

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return self._list_offsets(topic, partitions, IsolationLevel.READ_COMMITTED)

    def _list_offsets(self, topic: str, partitions: Sequence[int], isolation: IsolationLevel) -> dict[int, int]:
        """ListOffsets (latest) at ``isolation``."""
        wanted = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}  # type: ignore[no-untyped-call]
        with translated(f"listing the end offsets of {topic}"):
            found = self._admin().list_offsets(wanted, isolation_level=isolation, request_timeout=TIMEOUT_S)
            return {tp.partition: int(future.result().offset) for tp, future in found.items()}

    def _consumer(self, **config: Any) -> Consumer:
        with translated(f"connecting to Kafka at {self.bootstrap}"):
            return Consumer({**self.connection, **READ, **FETCH, "group.id": f"reader-{uuid.uuid4().hex}", **config})

    def _gaps(self) -> Gaps | None:
        """A reader's gap checks, if the broker leaves holes (``hole_patience_s``)."""
        if self.hole_patience_s is None:
            return None
        return Gaps(GapProbe(lambda: self._consumer(**PROBE)), self.hole_patience_s)

    def reader(self, max_fetch_bytes: int | None = None, max_wait_ms: int | None = None) -> Reader:
        sized = {} if max_fetch_bytes is None else {"max.partition.fetch.bytes": max_fetch_bytes}
        consumer = self._consumer(**sized, **{"fetch.wait.max.ms": max_wait_ms or SHORT_WAIT_MS})  # never joins
        return ConfluentReader(consumer, self._gaps(), rest_at_end=max_wait_ms is None)  # else it follows

    def group_reader(
        self,
        topic: str,
        group: str,
        on_assigned: Partitions,
        on_revoked: Partitions,
        timeouts: GroupTimeouts,
        max_wait_ms: int = FOLLOW_WAIT_MS,
    ) -> GroupReader:
        config = {"group.id": group, "session.timeout.ms": timeouts.session_timeout_ms}
        config |= {"heartbeat.interval.ms": timeouts.heartbeat_interval_ms, "fetch.wait.max.ms": max_wait_ms}
        polled = max(timeouts.max_poll_interval_ms, timeouts.session_timeout_ms)  # librdkafka refuses less
        member = ConfluentGroupReader(self._consumer(**config, **{"max.poll.interval.ms": polled}), self._gaps(), False)
        member.subscribe(topic, on_assigned, on_revoked)
        return member

    def writer(self, transactional_id: str) -> TransactionalWriter:
        return ConfluentWriter(self.connection, transactional_id)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(2)
            self._producer = self._admin_client = None
