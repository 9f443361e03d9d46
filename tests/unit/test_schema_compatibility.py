"""Schema evolution: the newest version of every record reads every older version.

Checked with the ``avro`` package's ReaderWriterCompatibilityChecker (the reference
implementation's rules), independently of fastavro which the codec uses.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import avro.schema
import pytest
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
)

from syncbackbone.infra.avro.codec import default_registry

REGISTRY = default_registry()
EVOLVED = [name for name in REGISTRY.names() if len(REGISTRY.versions(name)) > 1]
PAIRS = [(name, old.version) for name in EVOLVED for old in REGISTRY.versions(name)[:-1]]


def avro_schema(source: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(source))


def compatibility(reader: dict[str, Any], writer: dict[str, Any]) -> SchemaCompatibilityResult:
    return ReaderWriterCompatibilityChecker().get_compatibility(avro_schema(reader), avro_schema(writer))


def describe(result: SchemaCompatibilityResult) -> str:
    kinds = ", ".join(sorted(i.value for i in result.incompatibilities))
    return f"{kinds}: {sorted(result.messages)} at {sorted(result.locations)}"


def test_every_schema_parses_with_the_reference_avro_implementation() -> None:
    for name in REGISTRY.names():
        for version in REGISTRY.versions(name):
            assert avro_schema(version.source).fullname == name


def test_at_least_one_record_has_evolved_so_compatibility_is_exercised() -> None:
    assert "syncbackbone.EventEnvelope" in EVOLVED


@pytest.mark.parametrize(("name", "old_version"), PAIRS, ids=[f"{n}.v{v}" for n, v in PAIRS])
def test_the_newest_version_reads_every_older_version(name: str, old_version: int) -> None:
    newest = REGISTRY.get(name)
    result = compatibility(newest.source, REGISTRY.get(name, old_version).source)
    assert result.compatibility is SchemaCompatibilityType.compatible, (
        f"{name} v{newest.version} cannot read v{old_version}: {describe(result)}"
    )


def breaking_change_adds_a_field_without_default(source: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(source)
    changed["fields"].append({"name": "shard", "type": "string"})
    return changed


def breaking_change_narrows_a_long_to_an_int(source: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(source)
    next(f for f in changed["fields"] if f["name"] == "version")["type"] = "int"
    return changed


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (breaking_change_adds_a_field_without_default, SchemaIncompatibilityType.reader_field_missing_default_value),
        (breaking_change_narrows_a_long_to_an_int, SchemaIncompatibilityType.type_mismatch),
    ],
)
def test_the_checker_reports_a_breaking_change_as_incompatible(change: Any, kind: SchemaIncompatibilityType) -> None:
    current = REGISTRY.get("syncbackbone.EventEnvelope").source
    result = compatibility(change(current), current)
    assert result.compatibility is SchemaCompatibilityType.incompatible
    assert kind in result.incompatibilities, describe(result)


def test_adding_an_optional_field_with_a_default_is_compatible() -> None:
    current = REGISTRY.get("syncbackbone.CommandResult").source
    changed = copy.deepcopy(current)
    changed["fields"].append({"name": "merged_from", "type": ["null", "string"], "default": None})
    result = compatibility(changed, current)
    assert result.compatibility is SchemaCompatibilityType.compatible, describe(result)
