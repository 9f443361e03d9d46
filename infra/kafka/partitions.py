"""The pieces of the Kafka log that hold no connection: the namespace's topics and the
validated index of one partition (G8: the first record of an (aggregate, version) wins)."""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ...domain.errors import ConfigurationError
from ...domain.names import checked_namespace
from ...domain.records import StoredEvent
from .client import KafkaClient
from .index.store import Checkpoint

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
        """The topics of ``namespace`` (ConfigurationError if it is not a valid namespace)."""
        checked_namespace(namespace)
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
    """The valid events of one partition in log order: those from ``base`` on in memory, and below
    ``base`` (the saved checkpoint it started from, moved up by ``forget_below``) each aggregate's
    version once it was looked up."""

    __slots__ = (
        *("base", "base_end", "last", "prior", "saved", "next_offset"),
        *("events", "offsets", "by_aggregate", "by_command"),
    )

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.base = checkpoint.next_offset if checkpoint else 0
        self.base_end = checkpoint.last_offset + 1 if checkpoint else 0
        self.last = checkpoint
        self.prior: dict[str, int] = {}  # aggregate -> its version below base (looked up, then cached)
        self.events: list[StoredEvent] = []
        self.offsets: list[int] = []
        self.by_aggregate: dict[str, list[StoredEvent]] = {}
        self.by_command: dict[tuple[str, str], list[StoredEvent]] = {}
        self.next_offset = self.base  # the next offset to read from the log
        self.saved = self.base  # the saved index covers the offsets below this

    def unknown(self, aggregate_ids: Iterable[str]) -> set[str]:
        """Those of ``aggregate_ids`` whose version below base has not been looked up yet."""
        return {a for a in aggregate_ids if a not in self.prior} if self.base else set()

    def prior_version(self, aggregate_id: str) -> int:
        """The aggregate's version below base (look it up first if ``unknown``)."""
        return self.prior[aggregate_id] if self.base else 0

    def version(self, aggregate_id: str) -> int:
        return self.prior_version(aggregate_id) + len(self.by_aggregate.get(aggregate_id, ()))

    def at_version(self, aggregate_id: str, version: int) -> StoredEvent | None:
        """The event at ``version`` if it is held in memory."""
        history = self.by_aggregate.get(aggregate_id, [])
        i = version - self.prior_version(aggregate_id) - 1
        return history[i] if 0 <= i < len(history) else None

    @property
    def end(self) -> int:
        """One past the last event's offset (0 if none, in memory or below base)."""
        return self.offsets[-1] + 1 if self.offsets else self.base_end

    def add(self, stored: StoredEvent) -> bool:
        """Keep ``stored`` if it is its aggregate's next version (G8); whether it was kept."""
        event = stored.event
        if event.version != self.version(event.aggregate_id) + 1:
            log.debug("skipping %s v%s at %s: not the next version", event.aggregate_id, event.version, stored.position)
            return False
        self.by_aggregate.setdefault(event.aggregate_id, []).append(stored)
        self.events.append(stored)
        self.offsets.append(stored.position.offset)
        if event.meta.causation_id is not None:
            self.by_command.setdefault((event.aggregate_id, event.meta.causation_id), []).append(stored)
        return True

    def unsaved(self) -> tuple[list[StoredEvent], Checkpoint | None]:
        """The events not saved yet, and the checkpoint that saving them makes (None: nothing new)."""
        tip = self.events[-1] if self.events else None
        last = Checkpoint(self.next_offset, tip.position.offset, tip.aggregate_id, tip.version) if tip else self.last
        if last is None or self.next_offset <= self.saved:
            return [], None
        return self.events[bisect_left(self.offsets, self.saved) :], replace(last, next_offset=self.next_offset)

    def forget_below(self, offset: int) -> None:
        """Drop the events below ``offset`` (saved in the store) from memory, keeping each aggregate's version."""
        if not self.base:
            self.prior.update({agg: 0 for agg in self.by_aggregate if agg not in self.prior})
        cut = bisect_left(self.offsets, offset)
        dropped, self.events, self.offsets = self.events[:cut], self.events[cut:], self.offsets[cut:]
        counts: dict[str, int] = {}
        for s in dropped:
            counts[s.aggregate_id] = counts.get(s.aggregate_id, 0) + 1
            if s.event.meta.causation_id is not None:
                key = (s.aggregate_id, s.event.meta.causation_id)
                if not (rest := self.by_command[key][1:]):
                    del self.by_command[key]
                else:
                    self.by_command[key] = rest
        for agg, count in counts.items():
            self.prior[agg] += count
            if not (history := self.by_aggregate[agg][count:]):
                del self.by_aggregate[agg]
            else:
                self.by_aggregate[agg] = history
        if dropped:
            self.base_end = dropped[-1].position.offset + 1
        self.base = max(self.base, offset)
