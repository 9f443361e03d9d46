"""The confluent-kafka (librdkafka) implementation of the Kafka client seam (``kafka_client.py``).

librdkafka does the protocol work in C threads without the GIL, so the transactions of several
partitions overlap for real. Every workaround for a quirk of the Tansu test broker lives in the
section "Tansu quirks" below; two confluent-kafka quirks are handled where they show
(``kafka_confluent_io.translated`` and ``ConfluentWriter._wait``). Error translation, delivery
reports and record conversion live in ``kafka_confluent_io.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as TP
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from ..domain.errors import LogError, WriterFenced
from .kafka_client import (
    GroupReader,
    GroupTimeouts,
    Incoming,
    KafkaClient,
    Outgoing,
    Partitions,
    Reader,
    TransactionalWriter,
    append_end_markers,
)
from .kafka_confluent_io import PURGED, TIMEOUT_S, Deliveries, incoming, ours, produced, translated

CONNECT = {"socket.timeout.ms": 10_000, "log_level": 3, "log.connection.close": False}
WRITE = {**CONNECT, "enable.idempotence": True, "acks": "all", "linger.ms": 1, "message.timeout.ms": 10_000}
READ = {**CONNECT, "enable.auto.commit": False, "isolation.level": "read_committed", "auto.offset.reset": "earliest"}
FETCH = {"fetch.wait.max.ms": 5, "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20}
# --- Tansu quirks: every confluent-kafka workaround for the test broker lives in this section ---------


def live_members(state: str, listed: int) -> int:
    """Tansu's DescribeGroups members do not come through librdkafka (a stable group lists none): a group
    in a live state (stable or rebalancing) has at least one member, so count one then."""
    return 0 if state in ("EMPTY", "DEAD", "UNKNOWN") else max(listed, 1)


# --- confluent-kafka ---------------------------------------------------------------------------------------


class ConfluentReader(Reader):
    """Reader on a confluent-kafka consumer. librdkafka seeks only partitions it fetches already, so
    offsets sought between ``assign`` and the next poll go into the assignment itself."""

    def __init__(self, consumer: Consumer, topic: str = "") -> None:
        self._consumer = consumer
        self._topic = topic
        self._positions: dict[int, int] = {}  # librdkafka knows none until it returned a record
        self._starts: dict[int, int] | None = None  # an assignment not handed to librdkafka yet

    def _tp(self, partition: int, offset: int = OFFSET_INVALID) -> TP:
        return TP(self._topic, partition, offset)

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._topic = topic
        self._starts = {p: OFFSET_BEGINNING for p in partitions}
        self._positions = {p: 0 for p in partitions}

    def seek(self, partition: int, offset: int) -> None:
        self._positions[partition] = offset
        if self._starts is not None and partition in self._starts:
            self._starts[partition] = offset
            return
        with translated(f"seeking {self._topic}-{partition}"):
            self._consumer.seek(self._tp(partition, offset))

    def position(self, partition: int) -> int:
        return self._positions.get(partition, 0)

    def poll(self, timeout_s: float, max_records: int = 5000) -> list[Incoming]:
        """What is there already, else wait for a first record (consume would wait out the whole timeout)."""
        what = f"reading {self._topic}"
        with translated(what):
            if self._starts is not None:
                self._consumer.assign([self._tp(p, o) for p, o in self._starts.items()])
                self._starts = None
            messages = self._consumer.consume(max_records, 0)
            if not messages:
                first = self._consumer.poll(timeout_s)
                messages = [] if first is None else [first, *self._consumer.consume(max_records - 1, 0)]
        errors = [e for m in messages if (e := m.error()) is not None and e.code() != KafkaError._PARTITION_EOF]
        if errors:
            raise ours(errors[0], what)
        records = sorted((incoming(m) for m in messages if m.error() is None), key=lambda r: (r.partition, r.offset))
        for r in records:
            self._positions[r.partition] = max(self._positions.get(r.partition, 0), r.offset + 1)
        return records

    def close(self) -> None:
        with suppress(Exception):  # closing is best effort
            self._consumer.close()


class ConfluentGroupReader(ConfluentReader, GroupReader):
    """GroupReader on a subscribed confluent-kafka consumer."""

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


class ConfluentWriter(TransactionalWriter):
    """TransactionalWriter on a transactional confluent-kafka producer."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        self.transactional_id = transactional_id
        with translated(f"connecting writer {transactional_id}"):
            self._producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, **WRITE})
        self._later: list[Deliveries] = []

    def _wait(self, reports: Deliveries, what: str, timeout_s: float = TIMEOUT_S) -> list[int]:
        """confluent-kafka quirk: a producer in a fatal state (fenced) purges its records, and the fatal
        error itself may be lost (see ``translated``): a purge there means the writer is done."""
        try:
            return reports.wait(self._producer, what, timeout_s)
        except LogError as e:
            if isinstance(e, WriterFenced) or reports.error is None or reports.error.code() not in PURGED:
                raise
            raise WriterFenced(f"{what}: the producer dropped its records after a fatal error") from e

    def init(self) -> None:
        with translated(f"initialising writer {self.transactional_id}"):
            self._producer.init_transactions(TIMEOUT_S)

    def begin(self) -> None:
        self._later = []
        with translated(f"beginning a transaction of {self.transactional_id}"):
            self._producer.begin_transaction()

    def send(self, records: Sequence[Outgoing]) -> list[int]:
        what = f"writing in a transaction of {self.transactional_id}"
        return self._wait(produced(self._producer, records, what), what)

    def send_later(self, records: Sequence[Outgoing]) -> None:
        self._later.append(produced(self._producer, records, f"writing in a transaction of {self.transactional_id}"))

    def send_offsets(self, group: GroupReader, topic: str, offsets: Mapping[int, int], timeout_s: float) -> None:
        positions = [TP(topic, p, o) for p, o in offsets.items()]
        with translated(f"sending offsets in a transaction of {self.transactional_id}", timeout_fences=True):
            self._producer.send_offsets_to_transaction(positions, group.group_metadata(), timeout_s)

    def commit(self, timeout_s: float) -> None:
        what = f"committing a transaction of {self.transactional_id}"
        for reports in self._later:
            self._wait(reports, what, timeout_s)
        with translated(what, timeout_fences=True):
            self._producer.commit_transaction(timeout_s)

    def abort(self, timeout_s: float) -> None:
        with translated(f"aborting a transaction of {self.transactional_id}", timeout_fences=True):
            self._producer.abort_transaction(timeout_s)

    def close(self) -> None:
        with suppress(Exception):  # a fenced producer may fail to purge; it is dropped either way
            self._producer.purge(in_queue=True, in_flight=True)


class ConfluentClient(KafkaClient):
    """KafkaClient on confluent-kafka 2.x: one shared admin client and idempotent producer, made on first use."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self._admin_client: AdminClient | None = None
        self._producer: Producer | None = None

    def _admin(self) -> AdminClient:
        with self._lock, translated(f"connecting to Kafka at {self.bootstrap}"):
            self._admin_client = self._admin_client or AdminClient({"bootstrap.servers": self.bootstrap, **CONNECT})
            return self._admin_client

    def ensure_topics(self, topics: Mapping[str, Mapping[str, str]], partitions: int) -> dict[str, int]:
        missing = [
            NewTopic(t, partitions, 1, config=dict(c)) for t, c in topics.items() if self.partition_count(t) is None
        ]
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
            self._producer = self._producer or Producer({"bootstrap.servers": self.bootstrap, **WRITE})
        return produced(self._producer, records, "producing").wait(self._producer, "producing")

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return append_end_markers(self, topic, list(partitions))

    def _consumer(self, **config: Any) -> Consumer:
        with translated(f"connecting to Kafka at {self.bootstrap}"):
            return Consumer({"bootstrap.servers": self.bootstrap, **READ, **FETCH, **config})

    def reader(self, max_fetch_bytes: int | None = None) -> Reader:
        sized = {} if max_fetch_bytes is None else {"max.partition.fetch.bytes": max_fetch_bytes}
        return ConfluentReader(self._consumer(**{"group.id": f"reader-{uuid.uuid4().hex}"}, **sized))  # never joins

    def group_reader(
        self, topic: str, group: str, on_assigned: Partitions, on_revoked: Partitions, timeouts: GroupTimeouts
    ) -> GroupReader:
        config = {"group.id": group, "session.timeout.ms": timeouts.session_timeout_ms}
        config |= {"heartbeat.interval.ms": timeouts.heartbeat_interval_ms}
        member = self._consumer(**config, **{"max.poll.interval.ms": timeouts.max_poll_interval_ms})
        assigned = lambda _c, tps: on_assigned(frozenset(tp.partition for tp in tps))  # noqa: E731
        revoked = lambda _c, tps: on_revoked(frozenset(tp.partition for tp in tps))  # noqa: E731
        with translated(f"subscribing to {topic}"):
            member.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        return ConfluentGroupReader(member, topic)

    def writer(self, transactional_id: str) -> TransactionalWriter:
        return ConfluentWriter(self.bootstrap, transactional_id)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(2)
            self._producer = self._admin_client = None
