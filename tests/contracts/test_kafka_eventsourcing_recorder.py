"""eventsourcing's own aggregate recorder test case, on the Kafka log (Tansu) through EventLogAggregateRecorder."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import AggregateRecorder
from eventsourcing.tests import persistence as cases

from syncbackbone.infra.avro_codec import AvroCodec
from syncbackbone.infra.es_recorders import EventLogAggregateRecorder
from syncbackbone.infra.kafka_log import KafkaEventLog
from syncbackbone.infra.services import Tansu


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
        self.logs.append(KafkaEventLog(self.bootstrap, f"es{uuid.uuid4().hex[:10]}", AvroCodec()))
        return EventLogAggregateRecorder(self.logs[-1])
