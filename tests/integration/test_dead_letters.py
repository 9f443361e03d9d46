"""G7: malformed and poison commands go to the DLQ with the reason; the partition keeps flowing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from syncbackbone.commands.models import PutDocument
from syncbackbone.commands.ports import RawCommand
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.domain.documents import Document
from syncbackbone.domain.policies import ConflictPolicy, PolicyBook
from syncbackbone.domain.records import NewEvent
from syncbackbone.infra.avro.codec import command_headers, default_registry, encode_command, encode_envelope
from syncbackbone.infra.bootstrap import Backbone, bootstrap
from syncbackbone.infra.settings import load_settings


class ExplodingPolicy(ConflictPolicy):
    """A policy with a bug: it raises on every command of its collection."""

    name = "exploding"

    def check(self, doc: Document, expected_version: int | None) -> None:
        raise RuntimeError("policy bug")


@pytest.fixture(params=["embedded", "kafka"])
def backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    bb = bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, partitions=1))
    yield bb
    bb.close()


def poison_records() -> list[tuple[str, RawCommand]]:
    registry = default_registry()
    invalid = registry.write(
        "syncbackbone.PutDocument",
        {
            "command_id": "bad-fields",
            "collection": "no/slashes",
            "id": "x",
            "expected_version": -3,
            "actor": None,
            "correlation_id": None,
            "client_id": None,
            "tenant": None,
            "data": "{}",
        },
    )
    nested = registry.write("syncbackbone.PutDocument", put_fields("too-deep", '{"a":' * 100_000 + "1" + "}" * 100_000))
    not_a_command = encode_envelope(NewEvent("c/x", 1, "DocumentCreated", b""))
    unknown_schema = b"\xc3\x01" + bytes(8) + b"body"
    return [
        ("InvalidInput", ("c/a", b"not avro at all", [("command_id", b"garbage-1")])),
        ("UnknownSchema", ("c/b", unknown_schema, [])),
        ("InvalidInput", ("c/c", not_a_command, [])),
        ("InvalidInput", ("c/d", invalid, [("command_id", b"bad-fields")])),
        ("RecursionError", ("c/e", nested, [("command_id", b"too-deep")])),
    ]


def put_fields(command_id: str, data: str) -> dict[str, object]:
    """The fields of a PutDocument record whose ``data`` JSON text is given as is."""
    nothing = dict.fromkeys(("expected_version", "actor", "correlation_id", "client_id", "tenant"))
    return {"command_id": command_id, "collection": "c", "id": command_id, "data": data, **nothing}


def test_poison_commands_are_dead_lettered_with_the_reason_and_later_commands_still_flow(
    backbone: Backbone,
) -> None:
    exploding = PutDocument(collection="boom", id="1", data={})
    good = PutDocument(collection="c", id="ok", data={"fine": True})
    poison = poison_records()
    backbone.bus.send_raw([raw for _, raw in poison])
    backbone.bus.send([exploding])
    not_a_number = default_registry().write("syncbackbone.PutDocument", put_fields("nan", '{"x": NaN}'))
    backbone.bus.send_raw([("c/nan", not_a_number, [("command_id", b"nan")])])
    backbone.bus.send_raw([(good.aggregate_id, encode_command(good), command_headers(good))])
    policies = PolicyBook(per_collection={"boom": ExplodingPolicy()})
    processor = CommandProcessor(backbone.log, backbone.stream(), backbone.codec, policies)
    stop = threading.Event()
    worker = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    worker.start()
    try:
        ids = [good.command_id, exploding.command_id, "garbage-1", "bad-fields", "too-deep", "nan"]
        results = backbone.bus.wait_results(ids, 60)
    finally:
        stop.set()
        worker.join(10)
        processor.close()
    assert results[good.command_id].status == "accepted"
    assert results[exploding.command_id].code == "dead_lettered"
    assert results["garbage-1"].code == "invalid" and results["bad-fields"].code == "invalid"
    assert results["too-deep"].code == "invalid"
    assert results["nan"].code == "invalid" and "JSON" in (results["nan"].reason or "")  # rejected, not stored
    letters = backbone.bus.dead_letters(limit=10)
    # the NaN record is poison too: the command model's value check refuses it when it is decoded
    assert [d.error_type for d in letters] == [kind for kind, _ in poison] + ["InvalidInput", "RuntimeError"]
    assert "collection" in letters[3].error and "expected_version" in letters[3].error
    assert letters[0].value == b"not avro at all"
    assert "nan" in letters[5].error and "policy bug" in letters[6].error
