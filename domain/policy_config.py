"""The conflict policy of each collection, from configuration (``SYNC_POLICIES``).

The configuration maps a collection (or ``*``, every other collection) to a policy::

    {"notes": "lww",
     "tasks": {"policy": "merge", "fallback": "server", "fields": {"estimate": "max"}},
     "boards": {"policy": "crdt", "fields": {"likes": "counter", "tags": "orset"}},
     "*": "strict"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import CommandRejected, ConfigurationError
from .limits import Limits
from .lww import CrdtPolicy, LwwPolicy
from .merge import MergePolicy
from .policies import ConflictPolicy, PolicyBook, StrictPolicy

NAMES = ("strict", "lww", "merge", "crdt")


def policy_from_spec(spec: str | Mapping[str, Any], where: str = "policy") -> ConflictPolicy:
    """The policy that ``spec`` describes (a name, or an object with ``policy`` and options)."""
    if not isinstance(spec, str | Mapping):
        raise ConfigurationError(f"{where}: {spec!r} is neither a policy name nor an object")
    spec = {"policy": spec} if isinstance(spec, str) else dict(spec)
    name, fields = spec.pop("policy", None), spec.pop("fields", {})
    fallback = spec.pop("fallback", "client")
    if spec:
        raise ConfigurationError(f"{where}: unknown option(s) {sorted(spec)}; expected policy, fields, fallback")
    if not isinstance(fields, Mapping) or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigurationError(f"{where}: 'fields' must map field names to type or rule names")
    try:
        return _build(name, dict(fields), fallback)
    except CommandRejected as e:
        raise ConfigurationError(f"{where}: {e}") from e


def _build(name: object, fields: dict[str, str], fallback: str) -> ConflictPolicy:
    if name == "strict":
        return StrictPolicy()
    if name == "lww":
        return LwwPolicy()
    if name == "merge":
        return MergePolicy(fallback, fields)
    if name == "crdt":
        return CrdtPolicy(fields)
    raise CommandRejected(f"unknown policy {name!r}; expected one of {', '.join(NAMES)}")


def policy_book(config: Mapping[str, Any] | None, limits: Limits | None = None) -> PolicyBook:
    """The PolicyBook of ``config`` (collection -> spec; ``*`` is the default, strict when absent), deciding
    within ``limits`` (the defaults when None)."""
    config = dict(config or {})
    default = config.pop("*", "strict")
    per_collection = {name: policy_from_spec(spec, f"policy of {name!r}") for name, spec in config.items()}
    return PolicyBook(policy_from_spec(default, "default policy ('*')"), per_collection, limits)


def describe(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration in its long form, as clients read it from ``GET /sync/policies``."""
    out: dict[str, Any] = {}
    for name, spec in dict(config or {"*": "strict"}).items():
        long: dict[str, Any] = {"policy": spec} if isinstance(spec, str) else dict(spec)
        out[name] = {"policy": long["policy"], "fields": dict(long.get("fields", {}))}
        if long["policy"] == "merge":
            out[name]["fallback"] = long.get("fallback", "client")
    return out
