"""Worker settings from the environment: defaults, clear errors, secrets kept secret."""

from __future__ import annotations

import pytest

from stream.kafka.settings import SettingsError, load_settings


def test_defaults_work_against_a_local_broker():
    settings = load_settings({})
    assert settings.broker_url == "kafka://localhost:9092"
    assert settings.partitions == 6 and settings.store == "rocksdb"
    assert settings.retention_ms == -1


def test_kafka_bootstrap_servers_and_lists():
    settings = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092, k2:9093"})
    assert settings.broker_url == "kafka://k1:9092;kafka://k2:9093"
    assert settings.bootstrap_servers == ["k1:9092", "k2:9093"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHURNWATCH_PARTITIONS": "0"}, "CHURNWATCH_PARTITIONS: Input should be greater"),
        ({"CHURNWATCH_PARTITONS": "3"}, "CHURNWATCH_PARTITONS: unknown setting"),
        ({"CHURNWATCH_WEB_ENABLED": "maybe"}, "CHURNWATCH_WEB_ENABLED: expected true or false"),
        ({"CHURNWATCH_STORE": "disk"}, "CHURNWATCH_STORE: Input should be 'rocksdb' or 'memory'"),
        ({"CHURNWATCH_SECURITY_PROTOCOL": "SASL_SSL"}, "CHURNWATCH_SASL_USERNAME and"),
        ({"CHURNWATCH_POLICY": "/no/such/policy.toml"}, "no such file: /no/such/policy.toml"),
        ({"CHURNWATCH_USAGE_TOPIC": "same", "CHURNWATCH_BILLING_TOPIC": "same"}, "must all"),
        ({"CHURNWATCH_PROCESSING_GUARANTEE": "exactly_once"}, "not supported yet"),
    ],
)
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_the_sasl_password_never_shows():
    env = {
        "CHURNWATCH_SECURITY_PROTOCOL": "SASL_SSL",
        "CHURNWATCH_SASL_MECHANISM": "SCRAM-SHA-256",
        "CHURNWATCH_SASL_USERNAME": "svc-churnwatch",
        "CHURNWATCH_SASL_PASSWORD": "hunter2-secret",
    }
    settings = load_settings(env)
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.redacted())
    security = settings.kafka_python_security()
    assert security["sasl_plain_password"] == "hunter2-secret"
    assert security["sasl_mechanism"] == "SCRAM-SHA-256" and "ssl_context" in security
    with pytest.raises(SettingsError) as caught:
        load_settings({**env, "CHURNWATCH_PARTITIONS": "x"})
    assert "hunter2-secret" not in str(caught.value)
