"""CHURNWATCH_LOG_FORMAT=json as a log collector sees it: every line a command writes on stderr
is one JSON object, from the offline commands, ``serve`` and the worker (Faust's own lines
included), each run as its own process the way a deployment runs it."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from stream.devtools.brokers import free_port
from stream.devtools.deployment import Deployment
from stream.devtools.simulator import SimConfig, generate, serialize

FIELDS = ["timestamp", "level", "logger", "message"]


@pytest.fixture(scope="module")
def log_lines() -> list[bytes]:
    return list(serialize(generate(SimConfig(accounts=20, days=60, seed=5))))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}
    return {**env, **extra}


def _churnwatch(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], env=_env(**env),
                          capture_output=True, timeout=300, check=False)  # fmt: skip


def _json_lines(text: bytes | str) -> list[dict]:
    """Every line parsed as JSON, each an object with the four fields first."""
    lines = text.decode() if isinstance(text, bytes) else text
    entries = [orjson.loads(line) for line in lines.splitlines()]
    for entry in entries:
        assert isinstance(entry, dict) and list(entry)[:4] == FIELDS, entry
    return entries


def test_replay_of_a_damaged_log_says_so_in_json(tmp_path, log_lines):
    whole = gzip.compress(b"".join(log_lines))
    log = tmp_path / "cut.jsonl.gz"
    log.write_bytes(whole[: len(whole) // 2])
    done = _churnwatch("replay", str(log), "-o", str(tmp_path / "alerts.jsonl"),
                       CHURNWATCH_LOG_FORMAT="json")  # fmt: skip
    assert done.returncode == 3
    summary, incomplete = _json_lines(done.stderr)
    assert (summary["level"], summary["logger"]) == ("INFO", "churnwatch.cli")
    assert summary["message"].startswith("replay: ")
    assert incomplete["level"] == "ERROR"
    assert "INCOMPLETE" in incomplete["message"] and "truncated .gz" in incomplete["message"]


def test_warnings_and_errors_of_an_offline_command_are_json(tmp_path):
    done = _churnwatch("backtest", str(tmp_path / "missing.jsonl"), "--test-fraction", "0.3",
                       CHURNWATCH_LOG_FORMAT="json")  # fmt: skip
    assert done.returncode == 1
    deprecated, failed = _json_lines(done.stderr)
    assert deprecated["level"] == "WARNING"
    assert "--test-fraction is deprecated; use --holdout" in deprecated["message"]
    assert failed["level"] == "ERROR" and "missing.jsonl: cannot open" in failed["message"]


def test_text_stays_the_default(tmp_path, log_lines):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(log_lines))
    done = _churnwatch("replay", str(log), "-o", str(tmp_path / "alerts.jsonl"))
    assert done.returncode == 0
    assert done.stderr.decode().startswith("replay: ") and done.stderr.count(b"\n") == 1


@pytest.mark.parametrize("command", [["replay", "-"], ["worker", "--check"], ["serve"]])
def test_an_unknown_format_is_a_one_line_error(command):
    done = _churnwatch(*command, CHURNWATCH_LOG_FORMAT="yaml")
    assert done.returncode == 2
    assert done.stderr.decode() == (
        f"churnwatch {command[0]}: CHURNWATCH_LOG_FORMAT must be text or json, got 'yaml'\n"
    )
    assert done.stdout == b""


def test_serve_logs_json_while_kafka_and_redis_are_unreachable(tmp_path):
    """Its own lines, kafka-python's connection errors and aiohttp's access log alike."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/accounts/at-risk"
    err_path = tmp_path / "serve.err"
    env = _env(CHURNWATCH_LOG_FORMAT="json", CHURNWATCH_BROKER=f"127.0.0.1:{free_port()}",
               CHURNWATCH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # fmt: skip
    with err_path.open("wb") as err:
        serve = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        status = None
        deadline = time.monotonic() + 60
        while status is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=10):
                    pass
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                time.sleep(0.2)
        assert status == 503, "Redis is down: the API says so"
        time.sleep(1.0)  # the access log line is written after the response
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(10)
    entries = _json_lines(err_path.read_bytes())
    loggers = {entry["logger"] for entry in entries}
    assert "churnwatch.serve" in loggers
    assert any(name.startswith("kafka.") for name in loggers), loggers
    assert any(e["logger"] == "aiohttp.access" and " 503 " in e["message"] for e in entries)


@pytest.mark.slow
def test_the_worker_and_fausts_own_lines_are_json(kafka, tmp_path, log_lines):
    dep = Deployment(kafka, tmp_path, partitions=2, CHURNWATCH_LOG_FORMAT="json",
                     CHURNWATCH_LOG_LEVEL="info")  # fmt: skip
    check = dep.cli("worker", "--check")
    (checked,) = _json_lines(check.stderr)
    assert "partitions each" in checked["message"]

    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(log_lines))
    dep.cli("produce", str(log), "-q")
    worker = dep.start_worker()
    try:
        dep.wait_for(lambda: dep.progress() >= 1.0, 180, "the worker to catch up")
    finally:
        dep.stop_all()
    assert worker.returncode == 0
    text = Path(tmp_path / "worker-0.log").read_text()
    entries = _json_lines(text)
    loggers = {entry["logger"] for entry in entries}
    assert {"faust.worker", "churnwatch", "churnwatch.ingest"} <= loggers, loggers
    assert any(name.startswith("aiokafka.") for name in loggers), loggers
    assert any(e["message"].startswith("starting with {") for e in entries)
    assert any(e["message"] == "[^Worker]: Ready" for e in entries)
    restored = [e for e in entries if "accounts restored" in e["message"]]
    assert len(restored) == 2, "one line per partition"
    # Faust's multi-line tables are one JSON line each, their line breaks inside the string.
    assert any("\n" in e["message"] for e in entries)
