"""The Kafka client seam's contract on the confluent-kafka adapter, on the tests' broker (Tansu) and its profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_client_contract import KafkaClientContract

from syncbackbone.infra.bootstrap import kafka_connect
from syncbackbone.infra.kafka.brokers import BrokerProfile
from syncbackbone.infra.kafka.client import Connect, KafkaClient
from syncbackbone.infra.kafka.confluent.client import ConfluentClient
from syncbackbone.infra.runtime.processes import Tansu
from syncbackbone.infra.settings import load_settings


class TestConfluentClient(KafkaClientContract):
    @pytest.fixture
    def confluent(self) -> Connect:
        return kafka_connect(load_settings(kafka_client="confluent"))

    @pytest.fixture
    def broker(self, confluent: Connect) -> BrokerProfile:
        return confluent.broker

    @pytest.fixture
    def client(self, tansu: Tansu, confluent: Connect) -> Iterator[KafkaClient]:
        made = confluent(tansu.bootstrap)
        assert isinstance(made, ConfluentClient)
        yield made
        made.close()
