"""Event upcasting: the one place where old event versions in the log become today's on read.

An event payload is written with ``<Type>.v<N>.avsc`` and records N in its envelope
(``schema_version``). Reading it as the newest version M goes step by step, N → N+1 → … → M:
a step with an upcaster registered for (Type, N) runs it on the record as read with vN
(renames, splits, derived fields: what Avro resolution cannot do); any other step is
Avro schema resolution (added fields take their defaults, removed ones are dropped).
When no step from N has an upcaster, Avro resolves vN to vM directly (the fast path).
``UPCASTERS`` is the table shipped with the code; tests and tools may pass their own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path

from ...domain.errors import InvalidInput
from .codec import AvroCodec
from .schemas import (
    NAMESPACE,
    Record,
    SchemaRegistry,
    SchemaVersion,
    default_registry,
    load_schema_file,
    read_body,
    write_body,
)

Upcaster = Callable[[Record], Record]
"""Turns a record of ``<Type>.v<N>`` into one of ``<Type>.v<N+1>``."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(event type, from schema version N) -> the upcaster to v<N+1>. Empty: every change so far is additive."""


def registry_from_dir(folder: Path) -> SchemaRegistry:
    """A registry of every ``<Name>.v<N>.avsc`` under ``folder`` (e.g. a copy of schemas/ with a new version)."""
    return SchemaRegistry(load_schema_file(f) for f in sorted(folder.rglob("*.avsc")))


class Upcasters:
    """Reads an event payload written with an old schema version as the newest one."""

    def __init__(self, registry: SchemaRegistry, upcasters: Mapping[tuple[str, int], Upcaster]) -> None:
        self._registry, self._upcasters = registry, dict(upcasters)

    def read(self, event_type: str, payload: bytes, writer: SchemaVersion) -> Record:
        """The record in ``payload`` (written with ``writer``) as the newest version of its schema."""
        newest = self._registry.get(writer.name)
        steps = range(writer.version, newest.version)
        if not any((event_type, v) in self._upcasters for v in steps):
            return read_body(payload, 0, writer, newest)
        record = read_body(payload, 0, writer, writer)
        for version in steps:
            record = self._step(event_type, record, version)
        return record

    def _step(self, event_type: str, record: Record, version: int) -> Record:
        upcaster = self._upcasters.get((event_type, version))
        if upcaster is not None:
            try:
                return upcaster(record)
            except Exception as e:  # an upcaster that cannot handle a record names the event version
                raise InvalidInput(f"upcaster {event_type} v{version}→v{version + 1} failed: {e!r}") from e
        source = self._registry.get(f"{NAMESPACE}.{event_type}", version)
        target = self._registry.get(f"{NAMESPACE}.{event_type}", version + 1)
        out = io.BytesIO()
        write_body(out, source, record)
        return read_body(out.getvalue(), 0, source, target)


class UpcastingCodec(AvroCodec):
    """The Avro codec whose event reads go through ``Upcasters`` (``make_codec`` builds this one)."""

    def __init__(
        self,
        compress: bool = False,
        cipher_keys: Mapping[str, str] | None = None,
        active_key_id: str | None = None,
        registry: SchemaRegistry | None = None,
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        super().__init__(compress, cipher_keys, active_key_id)
        self._registry = registry or default_registry()
        self.upcasters = Upcasters(self._registry, UPCASTERS if upcasters is None else upcasters)

    def _read_payload(self, event_type: str, payload: bytes, writer: SchemaVersion) -> Record:
        return self.upcasters.read(event_type, payload, writer)
