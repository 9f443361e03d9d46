"""What a push answers for each of its mutations, built so that the answer cannot amplify.

A document's state comes only where the client cannot know it: with a merged or rejected
result the processor decided (never with an applied one, a refusal at the edge or a
timeout), once per document per push (with the last such result of that document), loaded
from the latest snapshot plus the events after it, never folded from version 1: 1,000
rejected mutations of one document carry one copy. The latest snapshot is this process's
own copy from its last load of the document when it has one (``LatestStates``: checked
against the log like a stored snapshot), so a hot document costs the few events since the
last push that carried it, not up to K events of the store's snapshot tail. States stop once they
total ``budget`` bytes (later ones carry none: the client pulls the document), and reasons
are cut to ``MAX_REASON`` characters, so a push of at most 1,000 mutations answers in at
most about 1,000 × (``MAX_REASON`` + 300) bytes plus the budget.

An applied result needs none: the SDK folds its own mutation into its copy of the
document when the result's version is the one right after that copy's (so its next base
version and counter delta count it before the change feed brings it back), and otherwise
waits for the feed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ...commands.ports import EventLog
from ...commands.results import CommandResult
from ...commands.snapshots import Recovered, Snapshots
from ...domain.documents import Document, split_aggregate_id
from ...domain.errors import InvalidInput, rejection_code
from ...domain.snapshots import SnapshotPoint
from ...domain.values import json_size

MAX_REASON = 500
MAX_KEPT = 10_000
"""The most documents whose last loaded state one process keeps (``LatestStates``)."""
Loader = Callable[[Collection[str]], dict[str, Document]]
"""The current state of each of some documents (from snapshot + tail)."""
TIMEOUT = "no result in time (is a processor running?); push it again: it will not apply twice"


@dataclass(slots=True)
class Pushed:
    """The result of one mutation of a push."""

    seq: int | None
    status: str
    command_id: str | None = None
    version: int = 0
    code: str | None = None
    reason: str | None = None
    retryable: bool = False
    state: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def carries_state(self) -> bool:
        """Whether this result comes with the document's state: the processor merged or rejected its mutation."""
        decided = self.command_id is not None and self.code != "timeout"
        return decided and self.status in ("merged", "rejected")


def cut(reason: str | None) -> str | None:
    """``reason`` cut to ``MAX_REASON`` characters."""
    return reason if reason is None or len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def refused(raw: Any, error: InvalidInput) -> Pushed:
    """The result of a mutation refused at the edge, before anything was stored."""
    seq = raw.get("seq") if isinstance(raw, dict) and isinstance(raw.get("seq"), int) else None
    return Pushed(seq, "rejected", code=rejection_code(error), reason=cut(str(error)))


def answered(seq: int, command_id: str, result: CommandResult | None, merged: bool) -> Pushed:
    """The result of a mutation that became a command: its command result, or a retryable timeout."""
    if result is None:
        return Pushed(seq, "rejected", command_id, code="timeout", reason=TIMEOUT, retryable=True)
    if result.status != "accepted":
        return Pushed(seq, "rejected", command_id, result.version, result.code, cut(result.reason))
    return Pushed(seq, "merged" if merged else "applied", command_id, result.version)


def with_states(pushed: list[Pushed], aggregate_ids: Sequence[str | None], load: Loader, budget: int) -> None:
    """Give the last merged or rejected result of each document its state, within ``budget`` bytes in all."""
    last = {agg: i for i, (p, agg) in enumerate(zip(pushed, aggregate_ids, strict=True)) if agg and p.carries_state}
    if not last:
        return
    documents = load(list(last))
    left = budget
    for agg, index in sorted(last.items(), key=lambda item: item[1]):
        doc = documents.get(agg) or Document(*split_aggregate_id(agg))
        state = {"version": doc.version, "data": doc.data, "deleted": doc.deleted}
        size = json_size(state)
        if size <= left:
            pushed[index].state, left = state, left - size


class LatestStates:
    """The current state of documents (a ``Loader``): this process's copy from its last load of each one,
    used as a snapshot (its event must still sit at its log position) with the events after it folded on;
    for a document without a copy, the snapshot store's latest snapshot plus the events after it."""

    def __init__(self, snapshots: Snapshots, log: EventLog, kept: int = MAX_KEPT) -> None:
        self._snapshots, self._log, self._kept = snapshots, log, kept
        self._points: dict[str, SnapshotPoint] = {}
        self._lock = threading.Lock()

    def __call__(self, aggregate_ids: Collection[str]) -> dict[str, Document]:
        with self._lock:
            known = {agg: self._points[agg] for agg in aggregate_ids if agg in self._points}
        loaded = self._caught_up(known)
        rest = [agg for agg in aggregate_ids if agg not in loaded]
        loaded |= self._snapshots.load(rest) if rest else {}
        self._keep(loaded.values())
        return {agg: r.document for agg, r in loaded.items()}

    def _caught_up(self, known: Mapping[str, SnapshotPoint]) -> dict[str, Recovered]:
        """The documents of ``known`` copies whose event is where the copy says, with the events after it."""
        tails = self._log.read_aggregates_from({agg: point.version for agg, point in known.items()}) if known else {}
        loaded = {}
        for agg, point in known.items():
            tail = tails.get(agg) or []
            if tail and tail[0].version == point.version and tail[0].position == point.position:
                folded = self._snapshots.fold(point.document, tail[1:], point.version)
                loaded[agg] = Recovered(folded.document, point.version, folded.tip or point.position, len(tail))
        return loaded

    def _keep(self, loaded: Collection[Recovered]) -> None:
        """Keep the newest copy of each loaded document (all are forgotten when there are too many)."""
        points = [SnapshotPoint(r.document, r.tip) for r in loaded if r.tip is not None]
        with self._lock:
            if len(self._points) + len(points) > self._kept:
                self._points.clear()
            for point in points:
                kept = self._points.get(point.aggregate_id)
                if kept is None or kept.version < point.version:
                    self._points[point.aggregate_id] = point
