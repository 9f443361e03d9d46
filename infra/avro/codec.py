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
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any, cast

from eventsourcing.compressor import ZlibCompressor

from ...commands.models import Command, parse_command
from ...commands.ports import Codec, Header
from ...commands.results import CommandResult, Status
from ...domain.documents import (
    ConflictResolved,
    DocumentCreated,
    DocumentDeleted,
    DocumentEvent,
    DocumentPatched,
    DocumentReplaced,
)
from ...domain.errors import ConfigurationError, InvalidInput, UnknownSchema
from ...domain.records import EventMeta, NewEvent, Position, StoredEvent
from ..common.cipher import make_cipher
from .schemas import (
    NAMESPACE,
    Record,
    SchemaVersion,
    default_registry,
    read_body,
    write_body,
)

ENVELOPE = f"{NAMESPACE}.EventEnvelope"
RESULT = f"{NAMESPACE}.CommandResult"
CONTENT_TYPE = "application/vnd.apache.avro+binary; schema="
_META_FIELDS = tuple(f.name for f in fields(EventMeta))
_ENVELOPE_CONTENT_TYPE = (CONTENT_TYPE + ENVELOPE).encode()
JSON_TEXT_FIELDS = {"data", "crdt"}
"""Command fields that hold JSON objects, carried as JSON text."""
CONFLICT_JSON = ("set", "theirs", "ours", "decisions")


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
    for name in JSON_TEXT_FIELDS & record.keys():
        record[name] = dump_json(record[name], f"{command.type}.{name}")
    return default_registry().write(f"{NAMESPACE}.{command.type}", record)


def decode_command(value: bytes) -> Command:
    """The validated command in a record value, or InvalidInput saying what is wrong."""
    schema, record = default_registry().read(value)
    type_name = schema.name.removeprefix(f"{NAMESPACE}.")
    for name in JSON_TEXT_FIELDS & record.keys():
        if isinstance(record[name], str):
            record[name] = load_json(record[name], f"{type_name}.{name}")
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
    if isinstance(event, ConflictResolved):
        texts = {name: dump_json(getattr(event, name), f"ConflictResolved.{name}") for name in CONFLICT_JSON}
        return texts | {"unset": list(event.unset), "policy": event.policy, "base_version": event.base_version}
    if isinstance(event, DocumentPatched):
        return {"set": dump_json(event.set, "DocumentPatched.set"), "unset": list(event.unset)}
    return {}


_EVENT_READERS: dict[str, Callable[[Record], DocumentEvent]] = {
    "DocumentCreated": lambda r: DocumentCreated(load_json(r["data"], "DocumentCreated.data")),
    "DocumentReplaced": lambda r: DocumentReplaced(load_json(r["data"], "DocumentReplaced.data")),
    "DocumentPatched": lambda r: DocumentPatched(load_json(r["set"], "DocumentPatched.set"), tuple(r["unset"])),
    "DocumentDeleted": lambda r: DocumentDeleted(),
    "ConflictResolved": lambda r: ConflictResolved(
        unset=tuple(r["unset"]),
        policy=r["policy"],
        base_version=r["base_version"],
        **{name: load_json(r[name], f"ConflictResolved.{name}") for name in CONFLICT_JSON},
    ),
}


class AvroCodec(Codec):
    """Commands as single-object Avro; event payloads as schemaless Avro, maybe compressed and encrypted."""

    def __init__(
        self, compress: bool = False, cipher_keys: Mapping[str, str] | None = None, active_key_id: str | None = None
    ) -> None:
        self._registry = default_registry()
        self._compress = compress
        self._compressor = ZlibCompressor()
        self._ciphers = {key_id: make_cipher(key_id, key) for key_id, key in (cipher_keys or {}).items()}
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
            return read(self._read_payload(event.type, payload, writer))
        except KeyError as e:
            raise UnknownSchema(f"{where}: the newest {event.type} schema has no field {e}") from e
        except UnknownSchema as e:
            raise UnknownSchema(f"{where}: {e}") from e
        except InvalidInput as e:
            raise UnknownSchema(f"{where} cannot be read: {e}") from e

    def _read_payload(self, event_type: str, payload: bytes, writer: SchemaVersion) -> Record:
        """The event record in ``payload`` as the newest schema of its type (the upcasting hook)."""
        return read_body(payload, 0, writer, self._registry.get(writer.name))

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
