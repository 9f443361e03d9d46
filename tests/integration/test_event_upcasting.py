"""Event upcasting end to end on both logs: v1 events in the log, the schema moves to v2, and the log still replays."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from syncbackbone.commands.models import CreateDocument, PatchDocument
from syncbackbone.commands.snapshots import Snapshots
from syncbackbone.infra.app.replay import ReplayService
from syncbackbone.infra.avro.schemas import NAMESPACE
from syncbackbone.infra.avro.upcasting import UpcastingCodec, registry_from_dir
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings

PATCHED_V2 = {
    "type": "record",
    "name": "DocumentPatched",
    "namespace": NAMESPACE,
    "doc": "v2 lists the fields a patch touched; v1 records cannot be resolved to it without an upcaster",
    "fields": [
        {"name": "set", "type": "string"},
        {"name": "unset", "type": {"type": "array", "items": "string"}, "default": []},
        {"name": "changed", "type": {"type": "array", "items": "string"}},
    ],
}


@pytest.fixture(params=["embedded", "kafka"])
def backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    bb = bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, partitions=2))
    yield bb
    bb.close()


def schemas_v2(tmp_path: Path) -> Path:
    """Today's schemas/ plus DocumentPatched.v2.avsc: the code after the schema change."""
    folder = tmp_path / "schemas"
    folder.mkdir()
    for item in resources.files(f"{NAMESPACE}.schemas").iterdir():
        if item.name.endswith(".avsc"):
            with resources.as_file(item) as source:
                shutil.copy(source, folder / item.name)
    (folder / "DocumentPatched.v2.avsc").write_text(json.dumps(PATCHED_V2))
    return folder


def test_v1_events_replay_through_their_upcaster_after_the_schema_moves_to_v2(
    backbone: Backbone, tmp_path: Path
) -> None:
    with backbone.running_processor():
        backbone.submit(CreateDocument(collection="u", id="a", data={"x": 1, "y": 2}))
        backbone.submit(PatchDocument(collection="u", id="a", data={"z": 3}, unset=["x"]))
        backbone.submit(PatchDocument(collection="u", id="a", data={"x": 9}))
    before = backbone.document("u/a")
    assert {s.event.meta.schema_version for s in backbone.log.read_aggregate("u/a")} == {1}

    seen: list[dict[str, Any]] = []

    def add_changed(record: dict[str, Any]) -> dict[str, Any]:
        seen.append(record)
        return {**record, "changed": sorted({*json.loads(record["set"]), *record["unset"]})}

    registry = registry_from_dir(schemas_v2(tmp_path))
    v2 = UpcastingCodec(registry=registry, upcasters={("DocumentPatched", 1): add_changed})
    replayed = ReplayService(backbone.log, v2, Snapshots(backbone.log, v2, None)).replay("u/a")
    assert replayed.problems == [] and replayed.state == before
    assert [h.change for h in replayed.history][1] == {"set": {"z": 3}, "unset": ("x",)}
    assert len(seen) == 2


def test_without_the_upcaster_each_v1_event_is_named_and_the_replay_goes_on(backbone: Backbone, tmp_path: Path) -> None:
    with backbone.running_processor():
        backbone.submit(CreateDocument(collection="u", id="b", data={"x": 1}))
        backbone.submit(PatchDocument(collection="u", id="b", data={"z": 3}))
    v2 = UpcastingCodec(registry=registry_from_dir(schemas_v2(tmp_path)), upcasters={})
    replayed = ReplayService(backbone.log, v2, Snapshots(backbone.log, v2, None)).replay("u/b")
    assert replayed.state.version == 2 and replayed.state.data == {"x": 1}
    [problem] = replayed.problems
    assert "u/b v2 (DocumentPatched) cannot be read" in problem and "DocumentPatched v1" in problem
