"""The Kafka command bus: ``<ns>.commands`` in; ``<ns>.command-results`` and ``<ns>.commands.dlq`` out.

``KafkaCommandBus`` sends commands and collects results with one background reader of every
results partition. ``KafkaCommandStream`` is a member of the processor group: after each
assignment it claims the partitions through the event log (fencing stale owners), and each
``commit`` is one transaction on the partition's writer with the events, the results, the dead
letters and the group's input offset (G2, G3, G8).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Sequence

from ...commands.models import Command
from ...commands.ports import Codec, CommandBus, RawCommand
from ...commands.results import CommandResult, DeadLetter
from ...domain.errors import LogError
from ..avro.codec import command_headers, decode_result, encode_result
from ..common.bounded import trim
from ..common.partitioning import partition_for
from .brokers import BrokerProfile, is_marker
from .client import FOLLOW_WAIT_MS, Connect, Incoming, KafkaClient, Outgoing
from .cluster import Cluster

log = logging.getLogger(__name__)
POLL_LIMIT = 2000
JOIN_TIMEOUT_S = 30.0
KEPT_RESULTS = 1_000_000  # first results of commands this bus sent or waits for
KEPT_OTHERS = 10_000  # recent results of other commands, for callers that wait after they arrived
DLQ_HEADERS = ("error_type", "error", "source_partition", "source_offset")


def result_record(topic: str, partition: int, result: CommandResult, at: int) -> Outgoing:
    """The record of ``result`` in ``<ns>.command-results`` (key = command id)."""
    key = result.command_id.encode()
    headers = (("command_id", key), ("status", result.status.encode()))
    return Outgoing(topic, partition, encode_result(result), key, headers, at)


def dead_letter_record(topic: str, partition: int, letter: DeadLetter, at: int) -> Outgoing:
    """The record of ``letter`` in ``<ns>.commands.dlq``: the original bytes and headers, plus the reason."""
    reason = (letter.error_type, letter.error, str(letter.partition), str(letter.offset))
    headers = (*letter.headers, *((name, value.encode()) for name, value in zip(DLQ_HEADERS, reason, strict=True)))
    key = None if letter.key is None else letter.key.encode()
    return Outgoing(topic, partition, letter.value, key, headers, at)


def dead_letter_of(record: Incoming) -> DeadLetter | None:
    """The dead letter in a ``<ns>.commands.dlq`` record (None, logged, if it is not one of ours)."""
    original, reason = record.headers[: -len(DLQ_HEADERS)], dict(record.headers[-len(DLQ_HEADERS) :])
    try:
        error_type, error, partition, offset = (reason[name].decode() for name in DLQ_HEADERS)
        key = None if record.key is None else record.key.decode()
        return DeadLetter(int(partition), int(offset), key, record.value, error_type, error, original)
    except (KeyError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        log.warning("skipping a record of the dead-letter topic at %s/%s: %r", record.partition, record.offset, e)
        return None


class ResultWatcher:
    """A thread reading every partition of ``<ns>.command-results`` from its end at start (as ``broker`` lists it:
    starting a few records early only shows older results); it keeps the first result of each command id since it
    was last sent (raw, decoded when asked for)."""

    def __init__(self, client: KafkaClient, broker: BrokerProfile, topic: str, partitions: int) -> None:
        self._reader = client.reader(max_wait_ms=broker.follow_wait_ms)
        ends = broker.end_offsets(client, topic, range(partitions))
        self._reader.assign(topic, list(ends))
        for partition, end in ends.items():
            self._reader.seek(partition, end)
        self._cond = threading.Condition()
        self._wanted: dict[str, None] = {}
        self._first: dict[str, bytes] = {}
        self._others: dict[str, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"results of {topic}", daemon=True)
        self._thread.start()

    def want(self, command_ids: Iterable[str]) -> None:
        """Keep the results of ``command_ids`` when they arrive."""
        with self._cond:
            for command_id in command_ids:
                self._wanted[command_id] = None
                if command_id in self._others:
                    self._first[command_id] = self._others.pop(command_id)
            trim(self._wanted, KEPT_RESULTS)

    def expect(self, command_ids: Iterable[str]) -> None:
        """Keep the next results of ``command_ids``: they are being sent (again), so any result held is stale."""
        ids = list(command_ids)
        with self._cond:
            for command_id in ids:
                self._first.pop(command_id, None)
                self._others.pop(command_id, None)
        self.want(ids)

    def wait(self, command_ids: Collection[str], timeout_s: float) -> dict[str, bytes]:
        """The raw results of ``command_ids`` that are there once all are, or at the timeout."""
        ids = list(dict.fromkeys(command_ids))
        self.want(ids)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = {i: self._first[i] for i in ids if i in self._first}
                remaining = deadline - time.monotonic()
                if len(found) == len(ids) or remaining <= 0:
                    return found
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._reader.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                records = self._reader.poll(FOLLOW_WAIT_MS / 1000)
            except LogError as e:
                log.warning("reading command results failed (%s); retrying", e)
                time.sleep(0.5)
                continue
            if records:
                self._collect(records)

    def _collect(self, records: list[Incoming]) -> None:
        with self._cond:
            for r in records:
                if r.key is None or is_marker(r):
                    continue
                command_id = r.key.decode(errors="replace")
                if command_id in self._first or command_id in self._others:
                    continue  # the first result of a command wins
                (self._first if command_id in self._wanted else self._others)[command_id] = r.value
            trim(self._first, KEPT_RESULTS)
            trim(self._others, KEPT_OTHERS)
            self._cond.notify_all()


class KafkaCommandBus(CommandBus):
    """The submitting side of the Kafka bus."""

    def __init__(self, bootstrap: str, namespace: str, codec: Codec, partitions: int = 4, *, connect: Connect) -> None:
        self.namespace, self._codec = namespace, codec
        self._group = f"{namespace}.processor"
        self._cluster = Cluster(connect, bootstrap)
        self._client, self._broker = self._cluster.client, self._cluster.broker
        self.topics, self._partitions = self._cluster.topics(namespace, partitions)
        self._results = ResultWatcher(self._client, self._broker, self.topics.results, self._partitions)

    def send(self, commands: Sequence[Command]) -> None:
        """Send ``commands``; their results are the ones decided after this (a command once rejected
        may be sent again and decided afresh)."""
        self._results.expect(c.command_id for c in commands)
        encode = self._codec.encode_command
        self.send_raw([(c.aggregate_id, encode(c), command_headers(c)) for c in commands])

    def send_raw(self, records: Sequence[RawCommand]) -> None:
        topic, count = self.topics.commands, self._partitions
        self._client.produce(
            [
                Outgoing(topic, partition_for(key, count), value, key.encode(), headers)
                for key, value, headers in records
            ]
        )

    def wait_results(self, command_ids: Collection[str], timeout_s: float) -> dict[str, CommandResult]:
        return {cid: decode_result(value) for cid, value in self._results.wait(command_ids, timeout_s).items()}

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        partitions = list(range(self._partitions))
        reader = self._client.reader()
        try:
            dlq = self.topics.dlq
            ends = self._broker.end_offsets(self._client, dlq, partitions)
            reader.assign(dlq, partitions)
            for p in partitions:
                reader.seek(p, 0)
            records = [r for r in self._broker.read_to_end(self._client, reader, dlq, ends) if not is_marker(r)]
        finally:
            reader.close()
        records.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return [letter for letter in map(dead_letter_of, records) if letter is not None][-limit:]

    def processor_alive(self, max_age_s: float = 5.0) -> bool:
        """Whether the processor group has members now (``max_age_s`` is not used: Kafka tracks liveness)."""
        try:
            return self._client.group_members(self._group) > 0
        except LogError as e:
            log.warning("cannot describe group %s: %s", self._group, e)
            return False

    def close(self) -> None:
        self._results.close()
        self._cluster.close()
