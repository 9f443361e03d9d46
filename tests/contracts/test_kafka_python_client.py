"""The Kafka client seam's contract on the kafka-python adapter, on the tests' broker (Tansu) and its profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_client_contract import KafkaClientContract

from syncbackbone.infra.bootstrap import kafka_connect
from syncbackbone.infra.kafka.brokers import BrokerProfile
from syncbackbone.infra.kafka.client import Connect, KafkaClient
from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.runtime.processes import Tansu
from syncbackbone.infra.settings import load_settings


class TestKafkaPythonClient(KafkaClientContract):
    @pytest.fixture
    def kafka_python(self) -> Connect:
        return kafka_connect(load_settings(kafka_client="kafka-python"))

    @pytest.fixture
    def broker(self, kafka_python: Connect) -> BrokerProfile:
        return kafka_python.broker

    @pytest.fixture
    def client(self, tansu: Tansu, kafka_python: Connect) -> Iterator[KafkaClient]:
        made = kafka_python(tansu.bootstrap)
        assert isinstance(made, KafkaPythonClient)
        yield made
        made.close()
