"""``syncbackbone demo``: a guided tour of the command path on the configured log.

It starts a processor in the background, submits commands (one accepted per type,
a stale write rejected by the strict policy, a retried command answered once, an
invalid command refused at the edge), then prints the events and the state.
"""

from __future__ import annotations

import json
import time
import uuid

from ...commands.models import Command, CreateDocument, DeleteDocument, PatchDocument, PutDocument, parse_command
from ...domain.documents import aggregate_id
from ...domain.errors import InvalidInput
from ..bootstrap import Backbone, bootstrap
from ..settings import Settings
from . import sync_demo

ACTOR = "demo-user"


def run_demo(settings: Settings) -> int:
    where = settings.kafka_bootstrap or f"the embedded PostgreSQL log in {settings.data_dir}/"
    print(f"syncbackbone demo on {where} (namespace {settings.namespace!r})")
    policies = {"tasks": sync_demo.POLICY} | settings.policies  # the sync part needs a merging collection
    backbone = bootstrap(settings.model_copy(update={"policies": policies}))
    try:
        with backbone.running_processor():
            tour(backbone)
            sync_demo.sync_tour(backbone)
    finally:
        backbone.close()
    return 0


def tour(backbone: Backbone) -> None:
    doc_id = f"welcome-{uuid.uuid4().hex[:6]}"
    agg = aggregate_id("notes", doc_id)
    print(f"\n1. commands for {agg}")
    step(
        backbone, CreateDocument(actor=ACTOR, collection="notes", id=doc_id, data={"title": "Hello", "tags": ["sync"]})
    )
    step(backbone, PatchDocument(actor=ACTOR, collection="notes", id=doc_id, data={"done": True}, expected_version=1))
    step(backbone, PutDocument(actor=ACTOR, collection="notes", id=doc_id, data={"title": "stale"}, expected_version=1))
    retried = PatchDocument(actor=ACTOR, collection="notes", id=doc_id, data={"title": "Hello, world"}, unset=["tags"])
    step(backbone, retried)
    step(backbone, retried, note="(the same command id again: answered, not applied twice)")
    other = f"scratch-{uuid.uuid4().hex[:6]}"
    step(backbone, CreateDocument(actor=ACTOR, collection="notes", id=other, data={"n": 1}))
    step(backbone, DeleteDocument(actor=ACTOR, collection="notes", id=other))
    print("\n2. bad input is refused with what is wrong")
    try:
        parse_command("PatchDocument", {"collection": "notes", "id": doc_id, "data": "not an object"})
    except InvalidInput as e:
        print(f"   refused: {e}")
    print(f"\n3. the event log of {agg}")
    for stored, event in backbone.history(agg):
        change = json.dumps({k: v for k, v in vars_of(event).items()}, sort_keys=True)
        at = time.strftime("%H:%M:%S", time.localtime(stored.event.meta.occurred_at_ms / 1000))
        pos = f"p{stored.position.partition}@{stored.position.offset}"
        print(f"   v{stored.version} {at} {event.type:<17} {pos:<8} {change}")
    doc = backbone.document(agg)
    print(f"\n4. state: {agg} v{doc.version} {json.dumps(doc.data, sort_keys=True)}")
    print(f"   its history and earlier states: syncbackbone replay {agg} [--to-version 2 | --as-of TIME]")


def step(backbone: Backbone, command: Command, note: str = "") -> None:
    started = time.perf_counter()
    result = backbone.submit(command)
    ms = (time.perf_counter() - started) * 1000
    detail = f"v{result.version}" if result.status == "accepted" else f"{result.code}: {result.reason}"
    print(f"   {command.type:<15} -> {result.status:<8} {detail} ({ms:.0f} ms) {note}".rstrip())


def vars_of(event: object) -> dict[str, object]:
    slots = getattr(type(event), "__slots__", ())
    return {name: getattr(event, name) for name in slots}
