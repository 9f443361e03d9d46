"""A processing round that fails before its commit is retried from the committed offsets: nothing is lost."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pytest
from support import DelegatingLog

from syncbackbone.commands.models import PutDocument
from syncbackbone.commands.ports import EventLog
from syncbackbone.commands.processor import CommandProcessor
from syncbackbone.domain.errors import LogUnavailable
from syncbackbone.domain.records import StoredEvent
from syncbackbone.infra.bootstrap import Backbone, bootstrap, running
from syncbackbone.infra.settings import load_settings


class UnreadableAtFirst(DelegatingLog):
    """The real log, whose first ``failures`` command look-ups fail as if its database were down."""

    def __init__(self, inner: EventLog, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    def find_commands(self, keys: Collection[tuple[str, str]]) -> dict[str, list[StoredEvent]]:
        if self.failures > 0:
            self.failures -= 1
            raise LogUnavailable("the index store is unavailable (injected)")
        return self.inner.find_commands(keys)


@pytest.fixture(params=["embedded", "kafka"])
def any_backbone(request: pytest.FixtureRequest, pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    kafka = request.getfixturevalue("tansu").bootstrap if request.param == "kafka" else None
    bb = bootstrap(load_settings(kafka_bootstrap=kafka, pg_dsn=pg_dsn, namespace=namespace, snapshots=False))
    yield bb
    bb.close()


@pytest.mark.kafka
def test_a_round_that_cannot_read_the_log_is_retried_and_loses_no_command(any_backbone: Backbone) -> None:
    bb = any_backbone
    unreadable = UnreadableAtFirst(bb.log, failures=2)
    commands = [PutDocument(collection="rounds", id=f"d{i}", data={"i": i}) for i in range(40)]

    with running(CommandProcessor(unreadable, bb.stream(), bb.codec)):
        bb.bus.send(commands)
        results = bb.bus.wait_results([c.command_id for c in commands], timeout_s=60)

    assert unreadable.failures == 0, "the injected failures happened"
    assert sorted(r.status for r in results.values()) == ["accepted"] * len(commands)
    assert all(len(bb.log.read_aggregate(c.aggregate_id)) == 1 for c in commands)
