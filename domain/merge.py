"""Field-level three-way merge against the base version the change was made on.

For each field the change writes: if the server did not change it since the base, the
change's value is taken; if both sides wrote the same value, nothing happens; if both
changed it differently, the field's fallback rule settles it: ``server`` (keep ours),
``client`` (take theirs), ``max``, ``min``, ``sum`` (ours + theirs - base, for numbers),
``union`` (lists) or ``custom:<name>`` (a resolver registered in ``crdt``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .crdt import resolver
from .documents import JSON, Document, DocumentEvent, DocumentReplaced
from .errors import CommandRejected
from .mutations import (
    BaseLoader,
    Change,
    Outcome,
    delete_decision,
    events_of,
    guard,
    is_stale,
    no_base,
    plain,
    targets,
    user_data,
)
from .policies import ConflictPolicy

MISSING: Any = object()
Rule = Callable[[Any, Any, Any], Any]


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _sum(base: Any, ours: Any, theirs: Any) -> Any:
    base = 0 if base is MISSING else base
    return ours + theirs - base if _numbers(base, ours, theirs) else theirs


def _extreme(pick: Callable[[Any, Any], Any]) -> Rule:
    return lambda base, ours, theirs: pick(ours, theirs) if _numbers(ours, theirs) else theirs


def _union(base: Any, ours: Any, theirs: Any) -> Any:
    if not (isinstance(ours, list) and isinstance(theirs, list)):
        return theirs
    return ours + [v for v in theirs if v not in ours]


RULES: dict[str, Rule] = {
    "server": lambda base, ours, theirs: ours,
    "client": lambda base, ours, theirs: theirs,
    "max": _extreme(max),
    "min": _extreme(min),
    "sum": _sum,
    "union": _union,
}


def rule_named(name: str) -> Rule:
    """The fallback rule ``name``, or CommandRejected."""
    if name.startswith("custom:"):
        custom = resolver(name.removeprefix("custom:"))
        return lambda base, ours, theirs: custom(ours, theirs, None if base is MISSING else base)
    found = RULES.get(name)
    if found is None:
        raise CommandRejected(f"unknown merge rule {name!r}; expected one of {sorted(RULES)} or custom:<name>")
    return found


def three_way(base: JSON, ours: JSON, set_: JSON, unset: list[str], rules: Mapping[str, str], fallback: str) -> Outcome:
    """Merge the change (``set_``, ``unset``) made on ``base`` into the server's ``ours``."""
    outcome = Outcome()
    for name in sorted(set_.keys() | set(unset)):
        mine, before = ours.get(name, MISSING), base.get(name, MISSING)
        theirs = set_.get(name, MISSING)
        outcome.ours[name] = None if mine is MISSING else mine
        if mine == before:
            result, how = theirs, "theirs"
        elif mine == theirs:
            continue
        else:
            rule = rules.get(name, fallback)
            result, how = rule_named(rule)(before, mine, theirs), f"both changed: {rule}"
            outcome.conflicted = True
        outcome.decisions[name] = how
        if result is MISSING:
            outcome.unset.append(name)
        elif result != mine:
            outcome.set[name] = result
    return outcome


class MergePolicy(ConflictPolicy):
    """Three-way merge per field; fields changed on both sides fall back to a per-field rule."""

    name = "merge"
    resolves = True

    def __init__(self, fallback: str = "client", rules: Mapping[str, str] | None = None) -> None:
        self.fallback, self.rules = fallback, dict(rules or {})
        for rule in (fallback, *self.rules.values()):
            rule_named(rule)

    def check(self, doc: Document, expected_version: int | None) -> None:
        """A stale version is merged, not refused."""

    def decide(self, change: Change, doc: Document, base: BaseLoader = no_base) -> list[DocumentEvent]:
        if change.op == "delete":
            return delete_decision(change, doc)
        guard(change, doc)
        if not doc.exists or not is_stale(change, doc):
            if change.op == "put" and doc.exists:
                return [DocumentReplaced(dict(change.set))]
            return plain(change if doc.exists or change.op != "patch" else _as_put(change), doc)
        assert change.base_version is not None
        before = base(change.base_version)
        set_, unset = targets(change, before)
        if change.op == "put":
            set_ = {k: v for k, v in set_.items() if before.data.get(k, MISSING) != v}
        outcome = three_way(user_data(before.data), user_data(doc.data), set_, unset, self.rules, self.fallback)
        return events_of(self.name, change, doc, outcome)


def _as_put(change: Change) -> Change:
    """A patch of a document that never existed creates it with the fields it sets."""
    return Change("put", change.set, (), change.base_version, change.clock, change.client, change.tag)
