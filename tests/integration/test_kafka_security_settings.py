"""The Kafka security settings reach every client both adapters make (issue 11, item 8), on the tests' broker.

Tansu speaks neither SASL nor TLS, so a client that uses the settings fails to connect, and says so
in our terms instead of hanging; a client that ignored them would connect.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from syncbackbone.domain.errors import ConfigurationError, LogUnavailable
from syncbackbone.infra.bootstrap import kafka_connect
from syncbackbone.infra.kafka.client import GroupTimeouts, KafkaClient
from syncbackbone.infra.kafka.confluent.client import ConfluentClient
from syncbackbone.infra.kafka.kafka_python.client import KafkaPythonClient
from syncbackbone.infra.runtime.processes import Tansu
from syncbackbone.infra.settings import load_settings

SASL = {
    "kafka_security_protocol": "SASL_PLAINTEXT",
    "kafka_sasl_mechanism": "SCRAM-SHA-256",
    "kafka_sasl_username": "alice",
    "kafka_sasl_password": "correct horse",
}
EXPECTED = {
    "confluent": {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "correct horse",
    },
    "kafka-python": {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "correct horse",
    },
}


def connection(client: KafkaClient) -> dict[str, object]:
    """What every producer, consumer and admin client of ``client`` is made with."""
    assert isinstance(client, ConfluentClient | KafkaPythonClient)
    return dict(client.connection)


@pytest.mark.parametrize("library", ["confluent", "kafka-python"])
def test_the_sasl_settings_are_in_what_every_client_is_made_with(tansu: Tansu, library: str) -> None:
    client = kafka_connect(load_settings(kafka_client=library, **SASL))(tansu.bootstrap)
    assert EXPECTED[library].items() <= connection(client).items()


@pytest.mark.parametrize("library", ["confluent", "kafka-python"])
def test_the_ca_file_is_passed_only_where_the_protocol_uses_tls(tansu: Tansu, tmp_path: Path, library: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    key = {"confluent": "ssl.ca.location", "kafka-python": "ssl_cafile"}[library]
    for protocol, passed in (("SSL", True), ("SASL_SSL", True), ("PLAINTEXT", False)):
        login = {"kafka_sasl_username": "alice", "kafka_sasl_password": "pw"}
        settings = load_settings(kafka_client=library, kafka_security_protocol=protocol, kafka_ssl_cafile=ca, **login)
        assert (connection(kafka_connect(settings)(tansu.bootstrap)).get(key) == str(ca)) == passed


@pytest.mark.parametrize("library", ["confluent", "kafka-python"])
def test_a_sasl_client_against_a_broker_without_sasl_fails_as_unavailable(tansu: Tansu, library: str) -> None:
    client = kafka_connect(load_settings(kafka_client=library, **SASL))(tansu.bootstrap)
    try:
        with pytest.raises(LogUnavailable):
            client.ensure_topics({f"s{uuid.uuid4().hex[:8]}.events": {}}, 1)
    finally:
        client.close()


def test_every_kind_of_confluent_client_is_made_with_the_ca_file(tansu: Tansu, tmp_path: Path) -> None:
    """librdkafka reads the CA file when a client is made: an unreadable one stops each kind at once."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    settings = load_settings(kafka_client="confluent", kafka_security_protocol="SSL", kafka_ssl_cafile=ca)
    client = kafka_connect(settings)(tansu.bootstrap)
    makes = [
        lambda: client.partition_count("any"),
        lambda: client.produce([]),
        client.reader,
        lambda: client.writer("w"),
        lambda: client.group_reader("any", "g", print, print, GroupTimeouts()),
    ]
    for make in makes:
        with pytest.raises(ConfigurationError, match="ssl.ca.location"):
            make()


def test_settings_that_cannot_work_are_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SYNC_KAFKA_SASL_USERNAME"):
        kafka_connect(load_settings(kafka_security_protocol="SASL_SSL"))
    with pytest.raises(ConfigurationError, match="SYNC_KAFKA_SSL_CAFILE"):
        kafka_connect(load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "missing.pem"))
