"""Avro schemas: the registry of ``schemas/*.avsc`` and single-object framing.

Each file is ``<Name>.v<N>.avsc``. A single-object record is ``C3 01``, the writer
schema's CRC-64-AVRO fingerprint (8 bytes, little-endian), then the binary body;
readers resolve the writer schema against the newest version of its name.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, NoReturn, cast

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from ...domain.errors import ConfigurationError, InvalidInput, UnknownSchema

Record = dict[str, Any]
NAMESPACE = "syncbackbone"
MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one record schema, parsed and fingerprinted."""

    name: str  # full name, e.g. syncbackbone.EventEnvelope
    version: int
    source: Record  # the JSON of the .avsc file
    parsed: Schema
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian
    header: bytes  # single-object header: MAGIC + fingerprint


def schema_version(source: Record, version: int) -> SchemaVersion:
    """Parse and fingerprint ``source`` as version ``version`` of its record."""
    parsed = parse_schema(source, named_schemas={})
    crc = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    name = f"{source.get('namespace', '')}.{source.get('name', '')}".lstrip(".")
    return SchemaVersion(name, version, source, parsed, crc, MAGIC + crc)


class SchemaRegistry:
    """Every schema version, by (name, version) and by fingerprint, with the newest of each name."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_version: dict[tuple[str, int], SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for v in versions:
            if (v.name, v.version) in self._by_version or v.fingerprint in self._by_fingerprint:
                raise ConfigurationError(f"schema {v.name} v{v.version} is defined twice")
            self._by_version[(v.name, v.version)] = v
            self._by_fingerprint[v.fingerprint] = v
        self._latest = {v.name: v for v in sorted(self._by_version.values(), key=lambda v: v.version)}
        self._readers = {fp: (w, self._latest[w.name]) for fp, w in self._by_fingerprint.items()}

    def names(self) -> list[str]:
        """The full names of all records, sorted."""
        return sorted(self._latest)

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every version of ``name``, oldest first."""
        return sorted((v for v in self._by_version.values() if v.name == name), key=lambda v: v.version)

    def get(self, name: str, version: int | None = None) -> SchemaVersion:
        """Version ``version`` of ``name`` (the newest when None), or UnknownSchema."""
        found = self._latest.get(name) if version is None else self._by_version.get((name, version))
        if found is None:
            known = ", ".join(f"v{v.version}" for v in self.versions(name)) or "none"
            raise UnknownSchema(f"no schema {name} v{version or '?'} in schemas/ (known versions: {known})")
        return found

    def by_fingerprint(self, crc: bytes) -> SchemaVersion:
        """The schema whose CRC-64-AVRO fingerprint is ``crc``, or UnknownSchema."""
        return self._by_fingerprint.get(crc) or self._unknown(crc)

    def _unknown(self, crc: bytes) -> NoReturn:
        raise UnknownSchema(f"unknown writer schema fingerprint {crc.hex()}: no such schema in schemas/")

    def write(self, name: str, record: Mapping[str, Any]) -> bytes:
        """``record`` single-object encoded with the newest schema of ``name``."""
        schema = self._latest.get(name) or self.get(name)
        out = io.BytesIO()
        out.write(schema.header)
        write_body(out, schema, record)
        return out.getvalue()

    def read(self, value: bytes, expected: str | None = None) -> tuple[SchemaVersion, Record]:
        """The schema and record of a single-object encoded ``value``, resolved to the newest version."""
        if value[:2] != MAGIC:
            raise InvalidInput(f"not an Avro single-object record: starts with {value[:2].hex() or 'nothing'}")
        if len(value) < HEADER_SIZE:
            raise InvalidInput(f"truncated Avro single-object header: {len(value)} of {HEADER_SIZE} bytes")
        writer, reader = self._readers.get(value[2:HEADER_SIZE]) or self._unknown(value[2:HEADER_SIZE])
        if expected is not None and reader.name != expected:
            raise InvalidInput(f"expected a {expected} record, got a {reader.name} record")
        return reader, read_body(value, HEADER_SIZE, writer, reader)


def write_body(out: io.BytesIO, schema: SchemaVersion, record: Mapping[str, Any]) -> None:
    """Append the Avro binary of ``record`` to ``out``, or raise InvalidInput."""
    try:
        fastavro.schemaless_writer(out, schema.parsed, record)
    except Exception as e:
        raise InvalidInput(f"cannot write {schema.name} v{schema.version}: {type(e).__name__}: {e}") from e


def read_body(data: bytes, start: int, writer: SchemaVersion, reader: SchemaVersion) -> Record:
    """The record in ``data[start:]`` written with ``writer``, as ``reader`` sees it."""
    fo = io.BytesIO(data)
    fo.seek(start)
    try:
        record = fastavro.schemaless_reader(fo, writer.parsed, None if writer is reader else reader.parsed)
    except Exception as e:
        what = f"{writer.name} v{writer.version}"
        raise InvalidInput(f"corrupt or truncated {what} body: {type(e).__name__}: {e}") from e
    if fo.tell() != len(data):
        raise InvalidInput(f"{len(data) - fo.tell()} unexpected bytes after the {writer.name} body")
    return cast(Record, record)


def load_registry(package: str = f"{NAMESPACE}.schemas") -> SchemaRegistry:
    """A registry of every ``<Name>.v<N>.avsc`` file in ``package`` and its subfolders."""
    return SchemaRegistry(load_schema_file(f) for f in _avsc_files(resources.files(package)))


@cache
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped with syncbackbone (loaded once, on first use)."""
    return load_registry()


def _avsc_files(folder: Traversable) -> Iterator[Traversable]:
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.is_dir():
            yield from _avsc_files(item)
        elif item.name.endswith(".avsc"):
            yield item


def load_schema_file(file: Traversable) -> SchemaVersion:
    """The schema in ``file``, checked against its name ``<Name>.v<N>.avsc``."""
    match = _FILE_NAME.match(file.name)
    if match is None:
        raise ConfigurationError(f"schema file {file.name!r} is not named <Name>.v<N>.avsc")
    try:
        loaded = schema_version(json.loads(file.read_text("utf-8")), int(match["version"]))
    except Exception as e:
        raise ConfigurationError(f"schema file {file.name} is not a valid Avro schema: {e}") from e
    if loaded.name != f"{NAMESPACE}.{match['name']}":
        raise ConfigurationError(f"schema file {file.name} defines {loaded.name}, not {NAMESPACE}.{match['name']}")
    return loaded
