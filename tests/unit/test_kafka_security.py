"""Security settings reach every Kafka client: confluent-kafka's config and Faust's credentials."""

from __future__ import annotations

import faust
import pytest

from streamrec.settings import Settings
from streamrec.streams.kafka import client_config, producer_config
from streamrec.streams.worker import broker_credentials

SASL = {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "svc", "kafka_sasl_password": "pw"}


def test_plaintext_adds_nothing() -> None:
    settings = Settings.load(env={}, overrides={"broker": "kafka://k:9092"})
    assert client_config(settings) == {"bootstrap.servers": "k:9092"}
    assert broker_credentials(settings) is None


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_reaches_both_kinds_of_client(protocol: str) -> None:
    settings = Settings.load(env={}, overrides={"kafka_security_protocol": protocol, **SASL})
    config = producer_config(settings)
    assert config["security.protocol"] == protocol
    assert (config["sasl.mechanism"], config["sasl.username"], config["sasl.password"]) == (
        "SCRAM-SHA-512",
        "svc",
        "pw",
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == ("svc", "pw", "SCRAM-SHA-512")
    assert (credentials.ssl_context is not None) == (protocol == "SASL_SSL")


def test_tls_alone_gives_faust_an_ssl_context() -> None:
    settings = Settings.load(env={}, overrides={"kafka_security_protocol": "SSL"})
    assert client_config(settings)["security.protocol"] == "SSL"
    assert isinstance(broker_credentials(settings), faust.SSLCredentials)
