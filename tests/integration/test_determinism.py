"""G6 on both logs: live state == replay from zero == replay from snapshots == a fresh backbone's replay."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import drop_namespace

from syncbackbone.commands.models import Command, CreateDocument, DeleteDocument, PatchDocument, PutDocument
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.commands.snapshots import Recovered
from syncbackbone.domain.documents import aggregate_id
from syncbackbone.infra.app.replay import ReplayService
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings

DOCS = ("d0", "d1", "d2")
KEYS = ("a", "b", "c")
values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4), st.lists(st.integers(), max_size=2)
)
data = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)
expected = st.one_of(st.none(), st.integers(0, 6))


@st.composite
def commands(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    kind = draw(st.sampled_from(["create", "put", "patch", "delete"]))
    fields: dict[str, Any] = {"id": draw(st.sampled_from(DOCS)), "expected_version": draw(expected)}
    if kind in ("create", "put"):
        fields["data"] = draw(data)
    if kind == "patch":
        fields["data"] = draw(data)
        fields["unset"] = draw(st.lists(st.sampled_from(KEYS), max_size=2, unique=True))
    return kind, fields["id"], fields


KINDS: dict[str, type[Command]] = {
    "create": CreateDocument,
    "put": PutDocument,
    "patch": PatchDocument,
    "delete": DeleteDocument,
}


K = 3  # snapshot every K events


def start(pg_dsn: str, namespace: str, kafka: str | None, **options: Any) -> Backbone:
    settings = {"snapshot_every": K, "snapshot_interval_s": 0, "partitions": 2, **options}
    return bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, **settings))


@pytest.fixture(scope="module", params=["embedded", "kafka"])
def live(request: pytest.FixtureRequest, pg_dsn: str) -> Iterator[tuple[Backbone, CommandProcessor]]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    namespace = f"t{uuid.uuid4().hex[:10]}"
    backbone = start(pg_dsn, namespace, kafka, index_checkpoint_every=25)  # Kafka: index checkpoints mid-workload
    try:
        with backbone.running_processor() as processor:
            yield backbone, processor
    finally:
        backbone.close()
        drop_namespace(pg_dsn, namespace)


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(workload=st.lists(commands(), min_size=1, max_size=25), split=st.integers(0, 25))
def test_live_state_equals_replay_from_zero_and_from_snapshots_for_every_aggregate(
    live: tuple[Backbone, CommandProcessor], workload: list[tuple[str, str, dict[str, Any]]], split: int
) -> None:
    backbone, processor = live
    collection = f"c{uuid.uuid4().hex[:8]}"
    batch = [KINDS[kind](collection=collection, **fields) for kind, _, fields in workload]
    aggregates = sorted({aggregate_id(collection, doc_id) for _, doc_id, _ in workload})
    if batch[:split]:
        backbone.submit_many(batch[:split])
    backbone.snapshots().take(aggregates)  # snapshots mid-workload, besides the K-job's
    if batch[split:]:
        backbone.submit_many(batch[split:])
    service = ReplayService.of(backbone)
    for agg in aggregates:
        from_zero = service.state(agg)
        assert snapshots_caught_up(backbone, agg, from_zero.version), f"{agg}: K={K} events past its last snapshot"
        from_snapshots, kept = load_between_snapshots(backbone, agg)
        assert processor.cached(agg) == from_zero == from_snapshots.document, agg
        assert from_snapshots.snapshot_version == kept, f"{agg} ignored its snapshot v{kept}"
    replayed_by_a_fresh_backbone(backbone, {agg: processor.cached(agg) for agg in aggregates})


def latest_snapshot(backbone: Backbone, agg: str) -> int:
    kept = backbone.snapshot_store().load([agg]).found.get(agg)
    return kept.version if kept else 0


def snapshots_caught_up(backbone: Backbone, agg: str, version: int, within_s: float = 10.0) -> bool:
    """Whether the K-job (which runs after the results are out) leaves ``agg`` fewer than K events past a snapshot."""
    deadline = time.monotonic() + within_s
    while version - latest_snapshot(backbone, agg) >= K and time.monotonic() < deadline:
        time.sleep(0.05)
    return version - latest_snapshot(backbone, agg) < K


def load_between_snapshots(backbone: Backbone, agg: str) -> tuple[Recovered, int]:
    """``agg`` loaded from snapshots while no job saved a newer one, and the snapshot version it should use."""
    for _ in range(20):
        before = latest_snapshot(backbone, agg)
        loaded = backbone.snapshots().load([agg])[agg]
        if latest_snapshot(backbone, agg) == before:
            return loaded, before
    raise AssertionError(f"the snapshots of {agg} kept changing")


def replayed_by_a_fresh_backbone(live: Backbone, states: dict[str, Any]) -> None:
    """A backbone wired now, with a new log (on Kafka, one that starts from the index checkpoints), agrees."""
    s = live.settings
    assert s.pg_dsn is not None
    fresh = start(s.pg_dsn, s.namespace, s.kafka_bootstrap)
    try:
        service = ReplayService.of(fresh)
        assert {agg: service.state(agg) for agg in states} == states
    finally:
        fresh.close()
