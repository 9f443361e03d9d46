"""The Avro codec: round trips, single-object framing, errors, interoperability, evolution."""

from __future__ import annotations

import contextlib
import io
import json
import zlib
from dataclasses import fields, replace
from importlib import resources
from typing import Any

import fastavro
import pytest
from eventsourcing.cipher import AESCipher
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from syncbackbone.commands.models import (
    Command,
    CreateDocument,
    DeleteDocument,
    PatchDocument,
    PutDocument,
)
from syncbackbone.commands.results import CommandResult, accepted, rejected
from syncbackbone.domain.documents import (
    DocumentCreated,
    DocumentDeleted,
    DocumentEvent,
    DocumentPatched,
    DocumentReplaced,
)
from syncbackbone.domain.errors import ConfigurationError, InvalidInput, UnknownSchema
from syncbackbone.domain.records import EventMeta, NewEvent, Position, StoredEvent
from syncbackbone.infra.avro.codec import (
    AvroCodec,
    command_headers,
    decode_command,
    decode_envelope,
    decode_result,
    default_registry,
    encode_command,
    encode_envelope,
    encode_result,
    record_headers,
)

DATA = {"title": "Buy milk", "done": False, "tags": ["a", "ü"], "n": {"x": 1.5, "y": None}}
KEY_1 = AESCipher.create_key(32)
KEY_2 = AESCipher.create_key(16)
FULL = {"actor": "ann", "correlation_id": "corr", "client_id": "phone-1", "tenant": "acme"}
COMMANDS: list[Command] = [
    CreateDocument(collection="todos", id="1", data=DATA),
    PutDocument(collection="todos", id="1", data=DATA, expected_version=3, **FULL),
    PatchDocument(collection="todos", id="1", data={"done": True}, unset=["tags"], expected_version=0),
    PatchDocument(collection="todos", id="1"),
    DeleteDocument(collection="todos", id="1", **FULL),
]
EVENTS: list[DocumentEvent] = [
    DocumentCreated(DATA),
    DocumentReplaced({}),
    DocumentPatched({"done": True}, ("tags", "n")),
    DocumentDeleted(),
]
CODECS = {
    "plain": {},
    "compressed": {"compress": True},
    "encrypted": {"cipher_keys": {"k1": KEY_1, "k2": KEY_2}, "active_key_id": "k2"},
    "compressed and encrypted": {"compress": True, "cipher_keys": {"k1": KEY_1}, "active_key_id": "k1"},
}
FULL_META = EventMeta(
    event_id="e1",
    schema_version=1,
    occurred_at_ms=1_700_000_000_123,
    causation_id="cmd-1",
    correlation_id="corr",
    actor="ann",
    client_id="phone-1",
    tenant="acme",
    compression="zlib",
    encryption_key_id="k1",
    trace_context="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
)
ENVELOPE = NewEvent("todos/1", 7, "DocumentPatched", b"\x00\x01binary\xff", FULL_META)


def avsc(file_name: str) -> dict[str, Any]:
    """A schema file read with nothing but the standard library."""
    return json.loads((resources.files("syncbackbone.schemas") / file_name).read_text("utf-8"))


def crc64(file_name: str) -> bytes:
    canonical = to_parsing_canonical_form(parse_schema(avsc(file_name)))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def stored(event: NewEvent) -> StoredEvent:
    return StoredEvent(event, Position(partition=2, offset=41))


def single_object(file_name: str, record: dict[str, Any]) -> bytes:
    """A record single-object encoded by fastavro alone."""
    out = io.BytesIO(b"\xc3\x01" + crc64(file_name))
    out.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(out, parse_schema(avsc(file_name)), record)
    return out.getvalue()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.type}")
def test_every_command_round_trips(command: Command) -> None:
    assert decode_command(encode_command(command)) == command
    assert AvroCodec().decode_command(AvroCodec().encode_command(command)) == command


@pytest.mark.parametrize("command", COMMANDS[::2], ids=lambda c: f"{c.type}")
def test_a_command_is_framed_with_the_fingerprint_of_its_own_schema(command: Command) -> None:
    value = encode_command(command)
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == crc64(f"{command.type}.v1.avsc")


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
@pytest.mark.parametrize("options", CODECS.values(), ids=list(CODECS))
def test_every_event_round_trips_plain_compressed_and_encrypted(event: DocumentEvent, options: Any) -> None:
    codec = AvroCodec(**options)
    new = codec.new_event("todos/1", 3, event, EventMeta(causation_id="cmd-1"))
    assert (new.aggregate_id, new.version, new.type) == ("todos/1", 3, event.type)
    assert codec.decode_event(stored(new)) == event
    assert AvroCodec(**options).decode_event(stored(decode_envelope(encode_envelope(new)))) == event


def test_new_event_fills_in_the_envelope_metadata() -> None:
    codec = AvroCodec(compress=True, cipher_keys={"k1": KEY_1}, active_key_id="k1")
    meta = codec.new_event("todos/1", 1, DocumentCreated(DATA), EventMeta(actor="ann")).meta
    assert len(meta.event_id) == 32 and meta.occurred_at_ms > 1_600_000_000_000
    assert (meta.compression, meta.encryption_key_id, meta.schema_version, meta.actor) == ("zlib", "k1", 1, "ann")


def test_new_event_keeps_a_given_event_id_and_time_and_clears_stale_transforms() -> None:
    given = EventMeta(event_id="e1", occurred_at_ms=5, compression="zlib", encryption_key_id="old")
    meta = AvroCodec().new_event("todos/1", 1, DocumentDeleted(), given).meta
    assert (meta.event_id, meta.occurred_at_ms, meta.compression, meta.encryption_key_id) == ("e1", 5, None, None)


def test_a_plain_payload_is_schemaless_avro_of_the_event_schema() -> None:
    new = AvroCodec().new_event("todos/1", 1, DocumentCreated(DATA), EventMeta())
    record = fastavro.schemaless_reader(io.BytesIO(new.payload), parse_schema(avsc("DocumentCreated.v1.avsc")))
    assert isinstance(record, dict) and json.loads(record["data"]) == DATA


def test_a_compressed_payload_is_zlib_and_an_encrypted_one_hides_the_data() -> None:
    compressed = AvroCodec(compress=True).new_event("t/1", 1, DocumentCreated(DATA), EventMeta())
    assert b"Buy milk" in zlib.decompress(compressed.payload)
    encrypted = AvroCodec(cipher_keys={"k1": KEY_1}, active_key_id="k1").new_event(
        "t/1", 1, DocumentCreated(DATA), EventMeta()
    )
    assert b"Buy milk" not in encrypted.payload


def test_an_event_whose_key_was_erased_cannot_be_read_and_the_error_names_the_key() -> None:
    new = AvroCodec(cipher_keys={"k1": KEY_1}, active_key_id="k1").new_event("t/1", 1, DocumentDeleted(), EventMeta())
    with pytest.raises(UnknownSchema, match="'k1'"):
        AvroCodec(cipher_keys={"k2": KEY_2}).decode_event(stored(new))


def test_an_event_encrypted_with_another_key_under_the_same_id_is_refused() -> None:
    new = AvroCodec(cipher_keys={"k1": KEY_1}, active_key_id="k1").new_event("t/1", 1, DocumentDeleted(), EventMeta())
    with pytest.raises(UnknownSchema, match="decrypt with key 'k1'"):
        AvroCodec(cipher_keys={"k1": AESCipher.create_key(32)}).decode_event(stored(new))


def test_the_codec_refuses_an_active_key_it_does_not_hold_or_a_malformed_key() -> None:
    with pytest.raises(ConfigurationError, match="'k9'"):
        AvroCodec(cipher_keys={"k1": KEY_1}, active_key_id="k9")
    with pytest.raises(ConfigurationError, match="'bad'"):
        AvroCodec(cipher_keys={"bad": "c2hvcnQ="})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "DocumentMoved"}, "not a document event type"),
        ({"meta": EventMeta(schema_version=9)}, "DocumentCreated v9"),
        ({"meta": EventMeta(compression="lz4")}, "'lz4'"),
        ({"meta": EventMeta(compression="zlib")}, "zlib-decompress"),
        ({"payload": b"\x10{}"}, "truncated"),
        ({"payload": b"\x04[]"}, "not a JSON object"),
    ],
)
def test_an_unreadable_event_raises_unknown_schema_saying_why(change: dict[str, Any], message: str) -> None:
    good = AvroCodec().new_event("todos/1", 4, DocumentCreated(DATA), EventMeta())
    with pytest.raises(UnknownSchema, match=message) as caught:
        AvroCodec().decode_event(stored(replace(good, **change)))
    assert "todos/1 v4" in str(caught.value)


def test_the_envelope_round_trips_every_field() -> None:
    assert decode_envelope(encode_envelope(ENVELOPE)) == ENVELOPE
    assert decode_envelope(encode_envelope(replace(ENVELOPE, meta=EventMeta()))).meta == EventMeta()


def test_the_envelope_is_framed_with_marker_and_the_fingerprint_of_its_newest_schema() -> None:
    value = encode_envelope(ENVELOPE)
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == crc64("EventEnvelope.v2.avsc")
    assert value[2:10] == default_registry().get("syncbackbone.EventEnvelope").fingerprint


def test_a_consumer_with_only_fastavro_and_the_avsc_files_reads_an_event_record() -> None:
    event = AvroCodec().new_event("todos/1", 1, DocumentCreated(DATA), EventMeta(causation_id="cmd-1"))
    value = encode_envelope(event)
    envelope = fastavro.schemaless_reader(io.BytesIO(value[10:]), parse_schema(avsc("EventEnvelope.v2.avsc")))
    assert isinstance(envelope, dict)
    assert (envelope["aggregate_id"], envelope["version"], envelope["type"]) == ("todos/1", 1, "DocumentCreated")
    assert envelope["causation_id"] == "cmd-1"
    body = fastavro.schemaless_reader(io.BytesIO(envelope["payload"]), parse_schema(avsc("DocumentCreated.v1.avsc")))
    assert isinstance(body, dict) and json.loads(body["data"]) == DATA


def test_envelope_bytes_written_with_v1_decode_with_the_v2_reader() -> None:
    meta = replace(FULL_META, trace_context=None)
    record = {f.name: getattr(meta, f.name) for f in fields(EventMeta) if f.name != "trace_context"}
    record.update(aggregate_id="todos/1", version=7, type="DocumentPatched", payload=b"\x00\x01")
    value = single_object("EventEnvelope.v1.avsc", record)
    assert value[2:10] != encode_envelope(ENVELOPE)[2:10]
    assert decode_envelope(value) == NewEvent("todos/1", 7, "DocumentPatched", b"\x00\x01", meta)


@pytest.mark.parametrize(
    "result",
    [
        accepted("cmd-1", "todos/1", [stored(ENVELOPE), StoredEvent(ENVELOPE, Position(3, 2**40))]),
        accepted("cmd-2", "todos/2", []),
        rejected("cmd-3", "todos/1", 4, "document todos/1 does not exist", "not_found"),
    ],
    ids=["accepted", "accepted without events", "rejected"],
)
def test_a_command_result_round_trips(result: CommandResult) -> None:
    assert decode_result(encode_result(result)) == result


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (b"", InvalidInput, "starts with nothing"),
        (b'{"json": true}', InvalidInput, "not an Avro single-object record"),
        (b"\xc3\x01\x01\x02", InvalidInput, "truncated Avro single-object header"),
        (b"\xc3\x01" + bytes(8) + b"body", UnknownSchema, "fingerprint 0000000000000000"),
        (encode_envelope(ENVELOPE)[:-3], InvalidInput, "truncated"),
        (encode_envelope(ENVELOPE) + b"\x00", InvalidInput, "1 unexpected bytes"),
        (encode_result(rejected("c", "t/1", 0, "r", "c")), InvalidInput, "expected a syncbackbone.EventEnvelope"),
    ],
    ids=["empty", "json", "short header", "unknown fingerprint", "truncated", "trailing", "wrong record"],
)
def test_decoding_a_bad_envelope_raises_invalid_input_saying_what_is_wrong(
    value: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        decode_envelope(value)


def test_no_truncation_or_corruption_of_a_record_escapes_as_a_raw_error() -> None:
    values = [encode_envelope(ENVELOPE), encode_result(accepted("c", "t/1", [stored(ENVELOPE)]))]
    values += [encode_command(c) for c in COMMANDS]
    for value in values:
        broken = [value[:n] for n in range(len(value))]
        broken += [value[:i] + bytes([value[i] ^ 0xFF]) + value[i + 1 :] for i in range(len(value))]
        for bad in broken:
            for decode in (decode_envelope, decode_result, decode_command):
                with contextlib.suppress(InvalidInput):
                    decode(bad)


def test_decoding_a_command_that_fails_validation_raises_invalid_input_naming_the_field() -> None:
    record = {"command_id": "c1", "collection": "bad name", "id": "1", "data": "{}"}
    with pytest.raises(InvalidInput, match="collection"):
        decode_command(single_object("CreateDocument.v1.avsc", record))


def test_decoding_a_command_whose_data_is_not_a_json_object_raises_invalid_input() -> None:
    record = {"command_id": "c1", "collection": "todos", "id": "1", "data": "[1, 2]"}
    with pytest.raises(InvalidInput, match="CreateDocument.data is not a JSON object"):
        decode_command(single_object("CreateDocument.v1.avsc", record))


def test_decoding_an_event_envelope_as_a_command_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown command type 'EventEnvelope'"):
        decode_command(encode_envelope(ENVELOPE))


def test_encoding_data_that_is_not_json_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not JSON-serialisable"):
        AvroCodec().new_event("t/1", 1, DocumentCreated({"x": float("nan")}), EventMeta())


def test_event_records_carry_type_aggregate_version_command_and_content_type_headers() -> None:
    assert dict(record_headers(ENVELOPE)) == {
        "type": b"DocumentPatched",
        "aggregate_id": b"todos/1",
        "version": b"7",
        "command_id": b"cmd-1",
        "content-type": b"application/vnd.apache.avro+binary; schema=syncbackbone.EventEnvelope",
    }
    assert "command_id" not in dict(record_headers(replace(ENVELOPE, meta=EventMeta())))


def test_command_records_carry_type_aggregate_command_and_content_type_headers() -> None:
    command = COMMANDS[0]
    assert dict(command_headers(command)) == {
        "type": b"CreateDocument",
        "aggregate_id": b"todos/1",
        "command_id": command.command_id.encode(),
        "content-type": b"application/vnd.apache.avro+binary; schema=syncbackbone.CreateDocument",
    }


@pytest.mark.parametrize("command_type", [type(c) for c in COMMANDS[::2]] + [DeleteDocument])
def test_each_command_schema_has_exactly_the_fields_of_its_model(command_type: type[Command]) -> None:
    schema_fields = {f["name"] for f in avsc(f"{command_type.__name__}.v1.avsc")["fields"]}
    assert schema_fields == set(command_type.model_fields)


def test_the_newest_envelope_schema_has_every_event_meta_field_and_no_log_position() -> None:
    schema_fields = {f["name"] for f in default_registry().get("syncbackbone.EventEnvelope").source["fields"]}
    expected = {f.name for f in fields(EventMeta)} | {"aggregate_id", "version", "type", "payload"}
    assert schema_fields == expected
