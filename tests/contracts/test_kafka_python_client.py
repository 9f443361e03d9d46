"""The Kafka client seam's contract on the kafka-python adapter, on the tests' broker (Tansu) and its profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_client_contract import KafkaClientContract

from syncbackbone.infra.kafka.brokers import BrokerProfile
from syncbackbone.infra.kafka.client import Connect, KafkaClient
from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.runtime.processes import Tansu


class TestKafkaPythonClient(KafkaClientContract):
    @pytest.fixture
    def broker(self, connect: Connect) -> BrokerProfile:
        return connect.broker

    @pytest.fixture
    def client(self, tansu: Tansu, connect: Connect) -> Iterator[KafkaClient]:
        made = connect(tansu.bootstrap)
        assert isinstance(made, KafkaPythonClient)
        yield made
        made.close()
