"""The read side's view of any EventLog (embedded PostgreSQL or Kafka): partitions, offsets, decoding."""

from __future__ import annotations

from ...commands.ports import Codec, EventLog
from ...domain.documents import DocumentEvent
from ...domain.records import StoredEvent
from ...projections.ports import EventFeed


class LogFeed(EventFeed):
    """An EventFeed over an EventLog and the codec that reads its payloads."""

    def __init__(self, log: EventLog, codec: Codec) -> None:
        self.log, self.codec = log, codec

    @property
    def partitions(self) -> int:
        return self.log.partitions

    def read(self, partition: int, from_offset: int, limit: int) -> list[StoredEvent]:
        return self.log.read_partition(partition, from_offset, limit)

    def end_offset(self, partition: int) -> int:
        return self.log.end_offset(partition)

    def decode(self, stored: StoredEvent) -> DocumentEvent:
        return self.codec.decode_event(stored)
