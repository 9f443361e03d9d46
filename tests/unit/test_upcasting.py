"""Event upcasting on read: upcasters for what Avro cannot resolve, Avro resolution for the other steps."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from syncbackbone.domain.documents import DocumentPatched
from syncbackbone.domain.errors import UnknownSchema
from syncbackbone.domain.records import EventMeta, Position, StoredEvent
from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.avro.schemas import NAMESPACE
from syncbackbone.infra.avro.upcasting import UpcastingCodec, registry_from_dir

PATCHED_V2 = {
    "type": "record",
    "name": "DocumentPatched",
    "namespace": NAMESPACE,
    "fields": [
        {"name": "set", "type": "string"},
        {"name": "unset", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "changed", "type": {"type": "array", "items": "string"}, "doc": "fields set or unset"},
    ],
}
PATCHED_V3 = {
    **PATCHED_V2,
    "fields": [*PATCHED_V2["fields"], {"name": "note", "type": "string", "default": ""}],
}


def schemas_with(tmp_path: Path, *extra: tuple[str, dict[str, Any]]) -> Path:
    """A copy of schemas/ plus ``extra`` (file name, schema) files."""
    folder = tmp_path / "schemas"
    folder.mkdir()
    for item in resources.files(f"{NAMESPACE}.schemas").iterdir():
        if item.name.endswith(".avsc"):
            with resources.as_file(item) as source:
                shutil.copy(source, folder / item.name)
    for name, schema in extra:
        (folder / name).write_text(json.dumps(schema))
    return folder


def changed_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "changed": sorted({*json.loads(record["set"]), *record["unset"]})}


def v1_patch() -> StoredEvent:
    event = AvroCodec().new_event("notes/n1", 2, DocumentPatched({"b": 2}, ("a",)), EventMeta())
    assert event.meta.schema_version == 1
    return StoredEvent(event, Position(0, 1))


def test_a_v1_event_is_read_as_v2_through_its_upcaster(tmp_path: Path) -> None:
    registry = registry_from_dir(schemas_with(tmp_path, ("DocumentPatched.v2.avsc", PATCHED_V2)))
    codec = UpcastingCodec(registry=registry, upcasters={("DocumentPatched", 1): changed_fields})
    writer = registry.get(f"{NAMESPACE}.DocumentPatched", 1)
    payload = v1_patch().event.payload
    assert codec.upcasters.read("DocumentPatched", payload, writer)["changed"] == ["a", "b"]
    assert codec.decode_event(v1_patch()) == DocumentPatched({"b": 2}, ("a",))


def test_without_its_upcaster_a_v1_event_gets_an_error_naming_the_event_and_schema(tmp_path: Path) -> None:
    registry = registry_from_dir(schemas_with(tmp_path, ("DocumentPatched.v2.avsc", PATCHED_V2)))
    codec = UpcastingCodec(registry=registry, upcasters={})
    with pytest.raises(UnknownSchema, match=r"notes/n1 v2 \(DocumentPatched\) cannot be read.*DocumentPatched v1"):
        codec.decode_event(v1_patch())


def test_steps_without_an_upcaster_are_resolved_by_avro(tmp_path: Path) -> None:
    folder = schemas_with(tmp_path, ("DocumentPatched.v2.avsc", PATCHED_V2), ("DocumentPatched.v3.avsc", PATCHED_V3))
    registry = registry_from_dir(folder)
    codec = UpcastingCodec(registry=registry, upcasters={("DocumentPatched", 1): changed_fields})
    writer = registry.get(f"{NAMESPACE}.DocumentPatched", 1)
    record = codec.upcasters.read("DocumentPatched", v1_patch().event.payload, writer)
    assert record == {"set": '{"b":2}', "unset": ["a"], "changed": ["a", "b"], "note": ""}


def test_an_event_of_a_schema_version_that_is_not_there_names_the_known_versions() -> None:
    stored = v1_patch()
    event = replace(stored.event, meta=replace(stored.event.meta, schema_version=9))
    with pytest.raises(UnknownSchema, match=r"no schema syncbackbone.DocumentPatched v9 .*known versions: v1"):
        UpcastingCodec().decode_event(StoredEvent(event, stored.position))
