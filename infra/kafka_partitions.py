"""The pieces of the Kafka log that hold no connection: the namespace's topics and the
validated index of one partition (G8: the first record of an (aggregate, version) wins)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..domain.errors import ConfigurationError
from ..domain.records import StoredEvent
from .kafka_client import KafkaClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Topics:
    """The four co-partitioned topics of a namespace."""

    commands: str
    events: str
    results: str
    dlq: str

    @classmethod
    def of(cls, namespace: str) -> Topics:
        return cls(
            f"{namespace}.commands", f"{namespace}.events", f"{namespace}.command-results", f"{namespace}.commands.dlq"
        )


def ensure_topics(client: KafkaClient, topics: Topics, partitions: int) -> int:
    """Create the namespace's missing topics with ``partitions``; the real partition count they share."""
    forever = {"retention.ms": "-1"}
    configs: dict[str, dict[str, str]] = {
        topics.commands: {},
        topics.events: forever,
        topics.results: {},
        topics.dlq: forever,
    }
    counts = client.ensure_topics(configs, partitions)
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise ConfigurationError(f"the topics are not co-partitioned (partition counts {counts}); recreate them")
    return counts[topics.events]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parallel(calls: Sequence[Callable[[], None]]) -> None:
    """Run ``calls`` in threads; raise the first error after all finished."""
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as e:  # re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class PartitionIndex:
    """The valid events of one partition, in log order, by aggregate and by (aggregate, command)."""

    __slots__ = ("events", "offsets", "by_aggregate", "by_command", "next_offset")

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.offsets: list[int] = []
        self.by_aggregate: dict[str, list[StoredEvent]] = {}
        self.by_command: dict[tuple[str, str], list[StoredEvent]] = {}
        self.next_offset = 0  # the next offset to read from the log

    def version(self, aggregate_id: str) -> int:
        return len(self.by_aggregate.get(aggregate_id, ()))

    @property
    def end(self) -> int:
        """One past the last event's offset (0 if none)."""
        return self.offsets[-1] + 1 if self.offsets else 0

    def add(self, stored: StoredEvent) -> bool:
        """Keep ``stored`` if it is its aggregate's next version (G8); whether it was kept."""
        event = stored.event
        history = self.by_aggregate.setdefault(event.aggregate_id, [])
        if event.version != len(history) + 1:
            log.debug("skipping %s v%s at %s: not the next version", event.aggregate_id, event.version, stored.position)
            return False
        history.append(stored)
        self.events.append(stored)
        self.offsets.append(stored.position.offset)
        if event.meta.causation_id is not None:
            self.by_command.setdefault((event.aggregate_id, event.meta.causation_id), []).append(stored)
        return True
