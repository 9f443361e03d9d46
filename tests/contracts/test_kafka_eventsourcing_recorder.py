"""eventsourcing's own aggregate recorder test case, on the Kafka log (Tansu) through EventLogAggregateRecorder."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import AggregateRecorder
from eventsourcing.tests import persistence as cases
from support import default_connect

from syncbackbone.infra.avro.codec import AvroCodec
from syncbackbone.infra.es.recorders import EventLogAggregateRecorder
from syncbackbone.infra.kafka.log import KafkaEventLog
from syncbackbone.infra.runtime.processes import Tansu


class TestKafkaEventLogAggregateRecorder(cases.AggregateRecorderTestCase):
    bootstrap = ""

    @pytest.fixture(autouse=True)
    def _broker(self, tansu: Tansu) -> None:
        self.bootstrap = tansu.bootstrap

    def setUp(self) -> None:
        super().setUp()
        self.logs: list[KafkaEventLog] = []

    def tearDown(self) -> None:
        for log in self.logs:
            log.close()
        super().tearDown()

    def create_recorder(self) -> AggregateRecorder:
        self.logs.append(
            KafkaEventLog(self.bootstrap, f"es{uuid.uuid4().hex[:10]}", AvroCodec(), connect=default_connect())
        )
        return EventLogAggregateRecorder(self.logs[-1])
