"""``tracker setup`` reaches a managed Kafka with the producer's security settings."""

from __future__ import annotations

from collectors.kafka import KafkaCollector
from collectors.kafka.options import KafkaOptions


def test_admin_client_takes_the_security_settings_and_nothing_else(tmp_path):
    options = KafkaOptions().load(
        {
            "bootstrap_servers": "broker.example:9093",
            "topic": "events",
            "spool": {"directory": str(tmp_path)},
            "producer": {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "PLAIN",
                "sasl.username": "$ConnectionString",
                "sasl.password": "secret",
                "ssl.ca.location": "/etc/ssl/certs/ca.pem",
                "client.id": "tracker",
                "linger.ms": 20,
            },
        }
    )
    assert KafkaCollector("kafka", options).admin_config() == {
        "bootstrap.servers": "broker.example:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "$ConnectionString",
        "sasl.password": "secret",
        "ssl.ca.location": "/etc/ssl/certs/ca.pem",
        "client.id": "tracker",
    }
