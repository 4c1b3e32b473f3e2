"""One place that configures Kafka clients: address, security, and the partitioner.

Every streamrec producer hashes keys with the Java client's murmur2 (librdkafka's
``murmur2_random``), the partitioner of Faust, Kafka Streams and every Java client, so a
user's events, state and lists share one partition number whoever produced them
(librdkafka's default, CRC32, would split a user across partitions). `partition_for` is
the same function, for checking where a record should have landed.

>>> [partition_for(key, 4) for key in (b"196", b"u1", "ü".encode())]
[0, 0, 2]
"""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2

from streamrec.settings import Settings

# librdkafka's name for the Java-compatible partitioner (murmur2; random for null keys).
PARTITIONER = "murmur2_random"
# Small lingers batch well without adding visible latency.
LINGER_MS = 5
# Producer queue in messages: large enough to absorb a burst of a replay.
QUEUE_MESSAGES = 500_000


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Java clients, Faust and `PARTITIONER` send ``key`` to."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def client_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka settings every client shares: bootstrap address and security."""
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers}
    if settings.kafka_security_protocol != "PLAINTEXT":
        config["security.protocol"] = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_cafile:
        config["ssl.ca.location"] = settings.kafka_ssl_cafile
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """A producer's settings: `client_config`, murmur2 partitioning, acks from every replica."""
    return {
        **client_config(settings),
        "partitioner": PARTITIONER,
        "acks": "all",
        "enable.idempotence": bool(settings.kafka_idempotence),
        "linger.ms": LINGER_MS,
        "queue.buffering.max.messages": QUEUE_MESSAGES,
        **extra,
    }
