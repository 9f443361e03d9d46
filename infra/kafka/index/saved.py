"""Events below a partition's checkpoint: located in the saved index (PostgreSQL), fetched from Kafka by offset.

A restarted Kafka log holds in memory only what it read after each partition's checkpoint
(``kafka_index.py``). An older event is found in the saved index and its record is fetched
by offset: offsets are sorted and read in runs, seeking past gaps wider than ``GAP``.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

from ....domain.errors import InvalidInput, LogError, LogUnavailable
from ....domain.records import Position, StoredEvent
from ...avro.codec import decode_envelope
from ..client import Incoming, KafkaClient, Reader
from .store import Checkpoint, IndexStore, Located

GAP = 2000
"""Read through up to this many offsets nobody asked for before seeking past them."""
FETCH_BYTES = 1 << 20
"""How much one fetch of the older events' reader returns at most per partition."""
FETCH_TIMEOUT_S = 30.0
"""How long a fetch waits for the next record before giving up."""


class StaleIndex(LogError):
    """The saved index names an offset whose record is not the event it says."""


class SavedEvents:
    """The saved index of one Kafka log and a reader to fetch the events it locates."""

    def __init__(self, store: IndexStore, client: KafkaClient, topic: str) -> None:
        self.store, self._topic = store, topic
        self._reader = client.reader(max_fetch_bytes=FETCH_BYTES)

    def matches(self, partition: int, checkpoint: Checkpoint) -> bool:
        """Whether the checkpoint's last event is where it says (else the topic was recreated)."""
        last = Located(checkpoint.last_aggregate_id, checkpoint.last_version, checkpoint.last_offset)
        try:
            self.events(partition, [last])
        except StaleIndex:
            return False
        return True

    def events(self, partition: int, located: Sequence[Located]) -> list[StoredEvent]:
        """The events at ``located`` of ``partition``, in the same order; StaleIndex if one is not there."""
        records = fetch(self._reader, self._topic, partition, [at.offset for at in located])
        found = []
        for at in located:
            record = records.get(at.offset)
            if record is None or not record.value:
                raise StaleIndex(f"{self._where(partition, at)}: there is no event at that offset")
            try:
                event = decode_envelope(record.value)
            except InvalidInput as e:
                raise StaleIndex(f"{self._where(partition, at)}: the record there is unreadable: {e}") from e
            if (event.aggregate_id, event.version) != (at.aggregate_id, at.version):
                found_there = f"{event.aggregate_id} v{event.version}"
                raise StaleIndex(f"{self._where(partition, at)}: the record there is {found_there}")
            found.append(StoredEvent(event, Position(partition, at.offset), record.timestamp_ms))
        return found

    def between(self, partition: int, wanted: Mapping[str, tuple[int, int]]) -> dict[str, list[StoredEvent]]:
        """For each aggregate of ``partition``, its events from the first to the last version asked for."""
        located = self.store.versions_between(wanted)
        found: dict[str, list[StoredEvent]] = {agg: [] for agg in wanted}
        for stored in self.events(partition, located):
            found[stored.aggregate_id].append(stored)
        for agg, (first, last) in wanted.items():
            if [s.version for s in found[agg]] != list(range(first, last + 1)):
                got = ", ".join(str(s.version) for s in found[agg][:5])
                raise StaleIndex(f"the saved index of {self._topic}-{partition} lacks versions of {agg}: "
                                 f"asked for {first}..{last}, found [{got}]")  # fmt: skip
        return found

    def close(self) -> None:
        """Release the reader (the store is closed by whoever made it)."""
        self._reader.close()

    def _where(self, partition: int, at: Located) -> str:
        return f"the saved index puts {at.aggregate_id} v{at.version} at {self._topic}-{partition}@{at.offset}"


def fetch(reader: Reader, topic: str, partition: int, offsets: Collection[int]) -> dict[int, Incoming]:
    """The records at ``offsets`` of ``partition`` (absent: no record there)."""
    todo, found = sorted(set(offsets)), dict[int, Incoming]()
    reader.assign(topic, [partition])
    i = 0
    while i < len(todo):
        reader.seek(partition, todo[i])
        i = read_run(reader, todo, i, found)
    return found


def read_run(reader: Reader, todo: list[int], i: int, found: dict[int, Incoming]) -> int:
    """Read on from ``todo[i]`` until every offset is passed or the next one is far; the next index.
    LogUnavailable if no record comes for FETCH_TIMEOUT_S."""
    deadline = time.monotonic() + FETCH_TIMEOUT_S
    while True:
        if time.monotonic() > deadline:
            raise LogUnavailable(f"the records at offsets {todo[i : i + 5]}... could not be fetched in time")
        records = reader.poll(0.1)
        if records:
            deadline = time.monotonic() + FETCH_TIMEOUT_S
        for record in records:
            while i < len(todo) and todo[i] < record.offset:
                i += 1  # no record there
            if i < len(todo) and todo[i] == record.offset:
                found[record.offset] = record
                i += 1
            if i == len(todo):
                return i
        if records and todo[i] - records[-1].offset > GAP:
            return i
