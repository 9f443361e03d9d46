"""Avro: the schemas in ``syncbackbone.schemas``, single-object encoding, and the Codec port.

Record values (commands, envelopes, results) are Avro single-object encoded: ``C3 01``,
the writer schema's CRC-64-AVRO fingerprint (8 bytes, little-endian), the binary body.
Readers resolve the writer schema against the newest version of its name, so old
records read as today's. Event payloads are schemaless Avro of ``<type>.v<schema_version>``,
then maybe zlib-compressed and AES-GCM encrypted. Decode failures raise InvalidInput.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, NoReturn, cast

import fastavro
from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.utils import Environment
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from ..commands.models import Command, parse_command
from ..commands.ports import Codec, Header
from ..commands.results import CommandResult, Status
from ..domain.documents import DocumentCreated, DocumentDeleted, DocumentEvent, DocumentPatched, DocumentReplaced
from ..domain.errors import ConfigurationError, InvalidInput, UnknownSchema
from ..domain.records import EventMeta, NewEvent, Position, StoredEvent

Record = dict[str, Any]
NAMESPACE = "syncbackbone"
MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
ENVELOPE = f"{NAMESPACE}.EventEnvelope"
RESULT = f"{NAMESPACE}.CommandResult"
CONTENT_TYPE = "application/vnd.apache.avro+binary; schema="
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")
_META_FIELDS = tuple(f.name for f in fields(EventMeta))
_ENVELOPE_CONTENT_TYPE = (CONTENT_TYPE + ENVELOPE).encode()


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


def dump_json(data: Any, what: str) -> str:
    """``data`` as compact JSON text, or InvalidInput naming ``what``."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{what} is not JSON-serialisable: {e}") from e


def load_json(text: str, what: str) -> dict[str, Any]:
    """The JSON object in ``text``, or InvalidInput naming ``what``."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"{what} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object but {type(value).__name__}")
    return value


def encode_envelope(event: NewEvent) -> bytes:
    """``event`` as a single-object encoded EventEnvelope (the event log's record value)."""
    meta = event.meta
    record = {f: getattr(meta, f) for f in _META_FIELDS}
    record.update(aggregate_id=event.aggregate_id, version=event.version, type=event.type, payload=event.payload)
    return default_registry().write(ENVELOPE, record)


def decode_envelope(value: bytes) -> NewEvent:
    """The event in a single-object encoded EventEnvelope, or InvalidInput."""
    rec = default_registry().read(value, ENVELOPE)[1]
    meta = EventMeta(**{f: rec[f] for f in _META_FIELDS})
    return NewEvent(rec["aggregate_id"], rec["version"], rec["type"], rec["payload"], meta)


def encode_result(result: CommandResult) -> bytes:
    """``result`` as a single-object encoded CommandResult."""
    return default_registry().write(RESULT, result.as_dict())


def decode_result(value: bytes) -> CommandResult:
    """The command result in a single-object encoded CommandResult, or InvalidInput."""
    rec = default_registry().read(value, RESULT)[1]
    positions = tuple(Position(p["partition"], p["offset"]) for p in rec["positions"])
    status, agg_id = cast(Status, rec["status"]), rec["aggregate_id"]
    return CommandResult(rec["command_id"], status, agg_id, rec["version"], rec["reason"], rec["code"], positions)


def encode_command(command: Command) -> bytes:
    """``command`` single-object encoded with the schema named after its type."""
    record = command.model_dump()
    if "data" in record:
        record["data"] = dump_json(record["data"], f"{command.type}.data")
    return default_registry().write(f"{NAMESPACE}.{command.type}", record)


def decode_command(value: bytes) -> Command:
    """The validated command in a record value, or InvalidInput saying what is wrong."""
    schema, record = default_registry().read(value)
    type_name = schema.name.removeprefix(f"{NAMESPACE}.")
    if "data" in record and isinstance(record["data"], str):
        record["data"] = load_json(record["data"], f"{type_name}.data")
    return parse_command(type_name, record)


def record_headers(event: NewEvent) -> list[Header]:
    """Kafka headers of an event record: type, aggregate_id, version, command_id, content-type."""
    command_id = event.meta.causation_id
    return [
        ("type", event.type.encode()),
        ("aggregate_id", event.aggregate_id.encode()),
        ("version", str(event.version).encode()),
        *([("command_id", command_id.encode())] if command_id is not None else []),
        ("content-type", _ENVELOPE_CONTENT_TYPE),
    ]


def command_headers(command: Command) -> list[Header]:
    """Kafka headers of a command record: type, aggregate_id, command_id, content-type."""
    return [
        ("type", command.type.encode()),
        ("aggregate_id", command.aggregate_id.encode()),
        ("command_id", command.command_id.encode()),
        ("content-type", f"{CONTENT_TYPE}{NAMESPACE}.{command.type}".encode()),
    ]


def event_record(event: DocumentEvent) -> Record:
    """The Avro record of a domain event (JSON data carried as JSON text)."""
    if isinstance(event, DocumentCreated | DocumentReplaced):
        return {"data": dump_json(event.data, f"{event.type}.data")}
    if isinstance(event, DocumentPatched):
        return {"set": dump_json(event.set, "DocumentPatched.set"), "unset": list(event.unset)}
    return {}


_EVENT_READERS: dict[str, Callable[[Record], DocumentEvent]] = {
    "DocumentCreated": lambda r: DocumentCreated(load_json(r["data"], "DocumentCreated.data")),
    "DocumentReplaced": lambda r: DocumentReplaced(load_json(r["data"], "DocumentReplaced.data")),
    "DocumentPatched": lambda r: DocumentPatched(load_json(r["set"], "DocumentPatched.set"), tuple(r["unset"])),
    "DocumentDeleted": lambda r: DocumentDeleted(),
}


def _cipher(key_id: str, key: str) -> AESCipher:
    try:
        return AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"cipher key {key_id!r} is not a base64 AES key of 16/24/32 bytes: {e}") from e


class AvroCodec(Codec):
    """Commands as single-object Avro; event payloads as schemaless Avro, maybe compressed and encrypted."""

    def __init__(
        self, compress: bool = False, cipher_keys: Mapping[str, str] | None = None, active_key_id: str | None = None
    ) -> None:
        self._registry = default_registry()
        self._compress = compress
        self._compressor = ZlibCompressor()
        self._ciphers = {key_id: _cipher(key_id, key) for key_id, key in (cipher_keys or {}).items()}
        if active_key_id is not None and active_key_id not in self._ciphers:
            known = ", ".join(sorted(self._ciphers)) or "none"
            raise ConfigurationError(f"active_key_id {active_key_id!r} is not among cipher_keys ({known})")
        self._active_key_id = active_key_id

    def encode_command(self, command: Command) -> bytes:
        return encode_command(command)

    def decode_command(self, value: bytes) -> Command:
        return decode_command(value)

    def new_event(self, aggregate_id: str, version: int, event: DocumentEvent, meta: EventMeta) -> NewEvent:
        schema = self._registry.get(f"{NAMESPACE}.{event.type}")
        out = io.BytesIO()
        write_body(out, schema, event_record(event))
        payload = out.getvalue()
        if self._compress:
            payload = self._compressor.compress(payload)
        if self._active_key_id is not None:
            payload = self._ciphers[self._active_key_id].encrypt(payload)
        meta = replace(
            meta,
            event_id=meta.event_id or uuid.uuid4().hex,
            occurred_at_ms=meta.occurred_at_ms or time.time_ns() // 1_000_000,
            schema_version=schema.version,
            compression="zlib" if self._compress else None,
            encryption_key_id=self._active_key_id,
        )
        return NewEvent(aggregate_id, version, event.type, payload, meta)

    def decode_event(self, stored: StoredEvent) -> DocumentEvent:
        event = stored.event
        where = f"event {event.aggregate_id} v{event.version} ({event.type})"
        read = _EVENT_READERS.get(event.type)
        if read is None:
            raise UnknownSchema(f"{where}: {event.type!r} is not a document event type")
        try:
            writer = self._registry.get(f"{NAMESPACE}.{event.type}", event.meta.schema_version)
            payload = self._unwrap(event.payload, event.meta)
            return read(read_body(payload, 0, writer, self._registry.get(writer.name)))
        except UnknownSchema as e:
            raise UnknownSchema(f"{where}: {e}") from e
        except InvalidInput as e:
            raise UnknownSchema(f"{where} cannot be read: {e}") from e

    def _unwrap(self, payload: bytes, meta: EventMeta) -> bytes:
        """``payload`` decrypted and decompressed as ``meta`` says."""
        if meta.encryption_key_id is not None:
            cipher = self._ciphers.get(meta.encryption_key_id)
            if cipher is None:
                raise UnknownSchema(f"encryption key {meta.encryption_key_id!r} is not configured (erased?)")
            payload = _guarded(cipher.decrypt, payload, f"decrypt with key {meta.encryption_key_id!r}")
        if meta.compression == "zlib":
            payload = _guarded(self._compressor.decompress, payload, "zlib-decompress")
        elif meta.compression is not None:
            raise UnknownSchema(f"unknown payload compression {meta.compression!r} (expected 'zlib' or none)")
        return payload


def _guarded(step: Callable[[bytes], bytes], data: bytes, what: str) -> bytes:
    try:
        return step(data)
    except Exception as e:
        raise InvalidInput(f"cannot {what}: {type(e).__name__}: {e}") from e
