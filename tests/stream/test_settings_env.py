"""The broker list from the environment: which variable wins, and one clear line when it is bad.

An empty or malformed list used to surface as an ``IndexError`` traceback inside aiokafka or an
``int()`` error that named no variable; the error must name the variable the list came from.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.kafka.settings import SettingsError, load_settings


def test_churnwatch_broker_wins_over_kafka_bootstrap_servers():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "shared:9092", "CHURNWATCH_BROKER": "ours:9093"}
    assert load_settings(env).bootstrap_servers == ["ours:9093"]
    assert load_settings({"KAFKA_BOOTSTRAP_SERVERS": "shared:9092"}).broker == "shared:9092"


def test_a_bad_kafka_bootstrap_servers_is_ignored_when_churnwatch_broker_is_set():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "", "CHURNWATCH_BROKER": "ours:9093"}
    assert load_settings(env).bootstrap_servers == ["ours:9093"]


@pytest.mark.parametrize(
    "broker",
    ["localhost:9092", "k1:9092, k2:9093", "kafka://k1:9092", "broker-0.kafka.svc:9094",
     "10.0.0.7:9092", "[::1]:9092", "kafka_1", "k1:9092,"],
)  # fmt: skip
def test_well_formed_lists_load(broker):
    assert load_settings({"CHURNWATCH_BROKER": broker}).bootstrap_servers


@pytest.mark.parametrize("variable", ["CHURNWATCH_BROKER", "KAFKA_BOOTSTRAP_SERVERS"])
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "empty; expected host:port[,host:port]"),
        ("  ", "empty; expected host:port[,host:port]"),
        (" , ", "empty; expected host:port[,host:port]"),
        ("a:b:c", "'a:b:c' is not host:port; expected host:port[,host:port]"),
        ("k1:x", "'k1:x' is not host:port"),
        ("k1:9092;k2:9092", "'k1:9092;k2:9092' is not host:port"),
        ("k1:9092, my host:9092", "'my host:9092' is not host:port"),
        ("k1:0", "'k1:0': the port must be from 1 to 65535"),
        ("k1:70000", "'k1:70000': the port must be from 1 to 65535"),
    ],
)
def test_a_bad_list_names_its_variable_and_the_form(variable, value, says):
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ") and says in message
    assert "\n" not in message


def test_the_worker_command_says_one_line_and_no_traceback():
    env = {"CHURNWATCH_BROKER": "", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker", "--check"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "churnwatch worker: CHURNWATCH_BROKER: empty; expected host:port[,host:port], "
        "e.g. localhost:9092"
    ]
