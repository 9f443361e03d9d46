"""No lost update through rebase, in the processor: a client's mutation moves onto the versions its own
earlier mutations made, whether they came in the same bus send, in another round, or before a restart
(a cold processor reads the run back from the log), and never over another client's version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from syncbackbone.commands.models import ApplyMutation
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.commands.results import CommandResult
from syncbackbone.infra.bootstrap import Backbone, bootstrap, running
from syncbackbone.infra.settings import load_settings


@pytest.fixture(params=["embedded", "kafka"])
def any_backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    bb = bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, snapshots=False))
    yield bb
    bb.close()


def mutation(who: str, seq: int, base: int, op: str = "patch", **data: Any) -> ApplyMutation:
    """A mutation of the strict collection's document ``d``, as a push makes it (``<client key>:<seq>``)."""
    return ApplyMutation(
        command_id=f"{who}:{seq}", client_id=who, collection="notes", id="d", expected_version=base, op=op, data=data
    )


def decided(bb: Backbone, *commands: ApplyMutation) -> list[CommandResult]:
    """The results of ``commands`` sent at once to a processor that starts cold (nothing cached)."""
    with running(CommandProcessor(bb.log, bb.stream(), bb.codec)):
        bb.bus.send(commands)
        results = bb.bus.wait_results([c.command_id for c in commands], timeout_s=60)
    return [results[c.command_id] for c in commands]


@pytest.mark.kafka
def test_a_clients_offline_mutations_land_one_after_the_other_in_one_send_and_after_a_restart(
    any_backbone: Backbone,
) -> None:
    bb = any_backbone
    first = decided(bb, mutation("p.me", 1, 0, "put", a=1), mutation("p.me", 2, 0, b=2), mutation("p.me", 3, 0, c=3))
    later = decided(bb, mutation("p.me", 4, 0, d=4))  # made offline on 0 too; a cold processor decides it
    other = decided(bb, mutation("p.you", 1, 0, e=5), mutation("p.you", 2, 4, f=6))

    assert [(r.status, r.version) for r in first + later] == [("accepted", v) for v in (1, 2, 3, 4)]
    assert [(r.status, r.code) for r in other] == [("rejected", "version_conflict"), ("accepted", None)]
    stored = bb.log.read_aggregate("notes/d")
    assert [e.event.meta.causation_id for e in stored] == ["p.me:1", "p.me:2", "p.me:3", "p.me:4", "p.you:2"]
