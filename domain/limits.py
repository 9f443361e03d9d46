"""Limits on what one change may carry: checked at the edge before a command is stored, and
again by the handler when the command is decided.

- the change's fields and CRDT deltas, as JSON: at most ``max_document_bytes`` (TooLarge);
- a clock (the change's own, and each LWW-register delta's) at most ``max_clock_skew_ms``
  ahead of the server's time (ClockSkew), and, when the change names its client, that
  client's own clock (its node is the client);
- a counter delta names no replica but the change's client, and (``check_steps``, which
  needs the document) advances it by at most ``max_counter_step``: a counter joins by
  maximum, so a step too far could never be taken back.

Deltas are recognised by their shape (a counter's ``p``/``n`` tallies, a register's ``c``):
a delta of another shape is refused by the field's own type when it is decided.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .documents import Document
from .errors import ClockSkew, CommandRejected, InvalidInput
from .hlc import Timestamp, wall_ms
from .values import RESERVED_KEY, checked_size

COUNTER_SIDES = ("p", "n")


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of the settings SYNC_MAX_DOCUMENT_BYTES, SYNC_MAX_CLOCK_SKEW_MS, SYNC_MAX_COUNTER_STEP."""

    max_document_bytes: int = 256 * 1024
    max_clock_skew_ms: int = 60_000
    max_counter_step: int = 1_000_000
    now_ms: Callable[[], int] = wall_ms


def check_change(
    fields: Mapping[str, Any], crdt: Mapping[str, Any], clock: str | None, client: str | None, limits: Limits
) -> None:
    """InvalidInput (TooLarge, ClockSkew) if a change breaks a limit that needs no document."""
    checked_size({"set": fields, "crdt": crdt}, limits.max_document_bytes, "the change")
    if clock is not None:
        check_clock(clock, client, limits, "clock")
    for name, delta in crdt.items():
        if isinstance(delta, dict) and isinstance(delta.get("c"), str):
            check_clock(delta["c"], client, limits, f"the clock of field {name!r}")
        others = sorted(str(r) for side in COUNTER_SIDES for r in _part(delta, side) if r != client)
        if others:
            whose = f"client {client[:60]!r}" if client else "a change without a client"
            raise InvalidInput(f"field {name!r}: {whose} may only advance its own counter, not {others[0][:60]!r}")


def check_clock(text: str, client: str | None, limits: Limits, what: str) -> None:
    """InvalidInput if ``text`` is no timestamp or not ``client``'s; ClockSkew if too far ahead."""
    stamp = Timestamp.parse(text)
    ahead = stamp.wall_ms - limits.now_ms()
    if ahead > limits.max_clock_skew_ms:
        raise ClockSkew(
            f"{what} {text[:40]!r} is {ahead:,} ms ahead of the server's time; "
            f"the limit is {limits.max_clock_skew_ms:,} ms (SYNC_MAX_CLOCK_SKEW_MS)"
        )
    if client is not None and stamp.node != client:
        raise InvalidInput(f"{what} {text[:40]!r} is not of the pushing client {client[:60]!r}: its node must be")


def check_steps(crdt: Mapping[str, Any], doc: Document, limits: Limits) -> None:
    """CommandRejected if a counter delta advances a replica by more than ``max_counter_step``."""
    states = _part(doc.data.get(RESERVED_KEY) if doc.exists else None, "crdt")
    for name, delta in crdt.items():
        for side in COUNTER_SIDES:
            before = _part(states.get(name), side)
            for replica, total in _part(delta, side).items():
                had = before.get(replica, 0)
                if _is_count(total) and _is_count(had) and total - had > limits.max_counter_step:
                    raise CommandRejected(
                        f"field {name!r}: a counter may move by at most {limits.max_counter_step:,} "
                        "per change (SYNC_MAX_COUNTER_STEP)"
                    )


def _part(state: Any, key: str) -> dict[str, Any]:
    """``state[key]`` when both are objects, else an empty one (malformed deltas are refused by their type)."""
    found = state.get(key) if isinstance(state, dict) else None
    return found if isinstance(found, dict) else {}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
