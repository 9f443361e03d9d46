"""CRDT field types: states that merge by a join (commutative, associative, idempotent).

Every state is plain JSON, so it can live in a document (under ``_sync.crdt``) and travel
in events and on the wire. A client sends a *delta* (a small state); the server joins it
into the field's state, and the field's value is rendered from the state.

- ``counter`` (PN counter): ``{"p": {replica: total}, "n": {replica: total}}``; value = sum(p) - sum(n).
- ``orset`` (observed-remove set, add wins): ``{"a": {element key: [tags]}, "r": [removed tags]}``.
- ``register`` (LWW register): ``{"v": value, "c": hybrid logical timestamp}``.
- ``custom:<name>``: ``{"v": value}`` joined by a resolver registered with ``register_resolver``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import CommandRejected, InvalidInput
from .hlc import Timestamp

JSON = dict[str, Any]
Resolver = Callable[[Any, Any, Any], Any]
"""(ours, theirs, base) -> value. As a CRDT join it is called with base=None and must be
commutative, associative and idempotent (max, min, set union, ...)."""


def element_key(value: Any) -> str:
    """The canonical JSON text of an OR-set element."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _replicas(state: Mapping[str, Any], side: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in dict(state.get(side) or {}).items()}


def counter_join(a: JSON, b: JSON) -> JSON:
    """Pointwise maximum of each replica's increments and decrements."""
    out: JSON = {}
    for side in ("p", "n"):
        left, right = _replicas(a, side), _replicas(b, side)
        out[side] = {r: max(left.get(r, 0), right.get(r, 0)) for r in sorted(left.keys() | right.keys())}
    return out


def counter_value(state: JSON) -> int:
    return sum(_replicas(state, "p").values()) - sum(_replicas(state, "n").values())


def counter_delta(state: JSON, replica: str, amount: int) -> JSON:
    """The delta that adds ``amount`` (negative: subtracts) on behalf of ``replica``."""
    side = "p" if amount >= 0 else "n"
    return {side: {replica: _replicas(state, side).get(replica, 0) + abs(amount)}}


def orset_join(a: JSON, b: JSON) -> JSON:
    """Union of the added tags per element and of the removed tags."""
    adds: dict[str, set[str]] = {}
    for state in (a, b):
        for key, tags in dict(state.get("a") or {}).items():
            adds.setdefault(key, set()).update(tags)
    removed = set(a.get("r") or ()) | set(b.get("r") or ())
    return {"a": {k: sorted(v) for k, v in sorted(adds.items())}, "r": sorted(removed)}


def orset_value(state: JSON) -> list[Any]:
    """The elements with an add tag that no remove observed, in canonical order."""
    removed = set(state.get("r") or ())
    live = [key for key, tags in dict(state.get("a") or {}).items() if set(tags) - removed]
    return [json.loads(key) for key in sorted(live)]


def orset_add_delta(value: Any, tag: str) -> JSON:
    """The delta that adds ``value`` under the unique ``tag`` (e.g. the change's id)."""
    return {"a": {element_key(value): [tag]}, "r": []}


def orset_remove_delta(state: JSON, value: Any) -> JSON:
    """The delta that removes ``value`` as observed in ``state`` (concurrent adds survive)."""
    return {"a": {}, "r": sorted(dict(state.get("a") or {}).get(element_key(value), ()))}


def register_join(a: JSON, b: JSON) -> JSON:
    """The write with the larger timestamp (ties: the larger canonical value)."""
    if not a:
        return dict(b)
    if not b:
        return dict(a)
    ka = (Timestamp.parse(a["c"]), element_key(a.get("v")))
    kb = (Timestamp.parse(b["c"]), element_key(b.get("v")))
    return dict(a) if ka >= kb else dict(b)


def register_value(state: JSON) -> Any:
    return state.get("v")


_RESOLVERS: dict[str, Resolver] = {
    "max": lambda ours, theirs, base: max(ours, theirs),
    "min": lambda ours, theirs, base: min(ours, theirs),
    "union": lambda ours, theirs, base: [json.loads(k) for k in sorted({element_key(v) for v in [*ours, *theirs]})],
}


def register_resolver(name: str, resolver: Resolver) -> None:
    """Make ``custom:<name>`` usable as a CRDT field type and as a merge fallback rule."""
    _RESOLVERS[name] = resolver


def resolver(name: str) -> Resolver:
    found = _RESOLVERS.get(name)
    if found is None:
        raise CommandRejected(f"no resolver named {name!r}; known: {', '.join(sorted(_RESOLVERS))}")
    return found


@dataclass(frozen=True, slots=True)
class CrdtType:
    """A field type: how states join and how a state renders as the field's value."""

    name: str
    join: Callable[[JSON, JSON], JSON]
    value: Callable[[JSON], Any]


def custom_type(name: str) -> CrdtType:
    """The type ``custom:<name>``: states ``{"v": value}`` joined by the named resolver."""

    def join(a: JSON, b: JSON) -> JSON:
        if "v" not in a or "v" not in b:
            return dict(b if "v" in b else a)
        return {"v": resolver(name)(a["v"], b["v"], None)}

    return CrdtType(f"custom:{name}", join, lambda s: s.get("v"))


BUILTIN_TYPES = {
    "counter": CrdtType("counter", counter_join, counter_value),
    "orset": CrdtType("orset", orset_join, orset_value),
    "register": CrdtType("register", register_join, register_value),
}


def _is_tally(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in value.items()
    )


def _is_tags(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def _shape_ok(kind: str, delta: Any) -> bool:
    if not isinstance(delta, dict):
        return False
    if kind == "counter":
        return set(delta) <= {"p", "n"} and all(_is_tally(v) for v in delta.values())
    if kind == "orset":
        adds = delta.get("a", {})
        ok_adds = isinstance(adds, dict) and all(_is_tags(t) for t in adds.values())
        return set(delta) <= {"a", "r"} and ok_adds and _is_tags(delta.get("r", []))
    if kind == "register":
        return set(delta) == {"v", "c"} and isinstance(delta["c"], str)
    return set(delta) == {"v"}


def checked_delta(kind: str, field: str, delta: Any) -> JSON:
    """``delta`` if it is a well-formed state of type ``kind``, else CommandRejected naming ``field``."""
    if not _shape_ok(kind.partition(":")[0], delta):
        raise CommandRejected(f"field {field!r}: {delta!r} is not a {kind} delta")
    if kind == "register":
        try:
            Timestamp.parse(delta["c"])
        except InvalidInput as e:
            raise CommandRejected(f"field {field!r}: {e}") from e
    return dict(delta)


def crdt_type(name: str) -> CrdtType:
    """The field type called ``name``, or CommandRejected."""
    if name.startswith("custom:"):
        resolver(name.removeprefix("custom:"))
        return custom_type(name.removeprefix("custom:"))
    found = BUILTIN_TYPES.get(name)
    if found is None:
        raise CommandRejected(f"unknown CRDT type {name!r}; expected counter, orset, register or custom:<name>")
    return found
