"""What a push answers for each of its mutations, built so that the answer cannot amplify.

A document's state comes once per document per push, with the last result of that document
that the processor decided (applied, merged or rejected; never with a refusal at the edge
or a timeout), loaded from the latest snapshot plus the events after it, never folded from
version 1: 1,000 rejected mutations of one document carry one copy. States stop once they
total ``budget`` bytes (later ones carry none: the client pulls the document), and reasons
are cut to ``MAX_REASON`` characters, so a push of at most 1,000 mutations answers in at
most about 1,000 × (``MAX_REASON`` + 300) bytes plus the budget.

The state comes with an applied result too (when it is the document's last) because the
SDK keeps its replica current from it: its next base version and its next counter delta
are computed from that replica, and without it an increment made before the change feed
brings the last one back would be lost. ``carries_state`` is the one place to narrow this
to merged and rejected results once the SDK folds its acknowledged mutations itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ...commands.results import CommandResult
from ...domain.documents import Document, split_aggregate_id
from ...domain.errors import InvalidInput, rejection_code
from ...domain.values import json_size

MAX_REASON = 500
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
        """Whether this result may come with the document's state: the processor decided its mutation."""
        return self.command_id is not None and self.code != "timeout"


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
    """Give the last decided result of each document its state, within ``budget`` bytes in all."""
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
