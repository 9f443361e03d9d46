"""G6 as a property: for any command workload, live state == replay from zero == replay from snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncbackbone.commands.models import Command, CreateDocument, DeleteDocument, PatchDocument, PutDocument
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.domain.documents import aggregate_id
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.replay import ReplayService
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


@pytest.fixture(scope="module")
def live(pg_dsn: str) -> Iterator[tuple[Backbone, CommandProcessor]]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    options: dict[str, Any] = {"snapshot_every": 3, "snapshot_interval_s": 0, "partitions": 2}
    backbone = bootstrap(load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, **options))
    try:
        with backbone.running_processor() as processor:
            yield backbone, processor
    finally:
        backbone.close()
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'.encode())


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
    backbone.snapshots().take(aggregates)  # snapshots mid-workload, besides the K=3 job's
    if batch[split:]:
        backbone.submit_many(batch[split:])
    assert backbone.schedulers[0].idle()
    service = ReplayService.of(backbone)
    for agg in aggregates:
        from_zero = service.state(agg)
        from_snapshots = backbone.snapshots().load([agg])[agg]
        assert processor.cached(agg) == from_zero == from_snapshots.document, agg
        kept = backbone.snapshot_store().load([agg]).found.get(agg)
        assert from_snapshots.snapshot_version == (kept.version if kept else 0), f"{agg} ignored its snapshot"
        assert kept is not None or from_zero.version < 3, f"{agg} has no snapshot after {from_zero.version} events"
