"""The states push results carry: this process's last copy of a document plus the events after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncbackbone.commands.models import PutDocument
from syncbackbone.infra.app.push_results import LatestStates
from syncbackbone.infra.bootstrap import Backbone, bootstrap, running
from syncbackbone.infra.settings import load_settings


@pytest.fixture
def backbone(pg_dsn: str, namespace: str) -> Iterator[Backbone]:
    bb = bootstrap(load_settings(kafka_bootstrap=None, pg_dsn=pg_dsn, namespace=namespace, snapshots=False))
    yield bb
    bb.close()


def put(bb: Backbone, doc_id: str, *values: int) -> None:
    with running(bb.processor()):
        for value in values:
            bb.submit(PutDocument(collection="c", id=doc_id, data={"v": value}), timeout_s=30)


def test_a_document_loaded_again_is_its_last_copy_with_the_events_after_it(backbone: Backbone) -> None:
    states = LatestStates(backbone.snapshots(), backbone.log)
    put(backbone, "d", 1, 2)
    first = states(["c/d"])["c/d"]
    put(backbone, "d", 3)

    again = states(["c/d"])["c/d"]

    assert (first.version, first.data, again.version, again.data) == (2, {"v": 2}, 3, {"v": 3})
