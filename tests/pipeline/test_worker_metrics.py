"""The worker's Prometheus endpoint on a real broker: every figure matches what is known of the
log it consumed and the topics it wrote."""

from __future__ import annotations

import urllib.request
from collections import Counter

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.events import InvalidEvent, decode_event, reason_kind, source_index
from stream.devtools.brokers import free_port
from stream.devtools.deployment import Deployment
from tests.pipeline.conftest import JUNK_LINES, PARTITIONS, ROCKSDB, start_worker

pytestmark = pytest.mark.slow


def _scrape(port: int) -> tuple[str, dict[str, list[tuple[dict[str, str], float]]]]:
    """The content type, and each sample by its exposed name (``..._total``, ``..._bucket``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        kind = response.headers.get("Content-Type", "")
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):  # raises on text Prometheus refuses
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return kind, samples


def _ours(samples: dict) -> dict:
    """The worker's own series (process collectors move on their own, even when idle)."""
    return {name: v for name, v in samples.items() if name.startswith("churnwatch_")}


def _answers(port: int) -> bool:
    try:
        _scrape(port)
    except OSError:
        return False
    return True


def _by(samples, name: str, *labels: str) -> Counter:
    return Counter({tuple(lab[k] for k in labels): value for lab, value in samples.get(name, [])})


def test_metrics_count_what_the_worker_did(kafka, simulated, tmp_path):
    log, _ = simulated
    lines = log.read_bytes().splitlines()
    junk = JUNK_LINES
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines[:3000] + junk + lines[3000:]) + b"\n")
    dep = Deployment(kafka, tmp_path, partitions=PARTITIONS, **ROCKSDB)
    expected_events: Counter = Counter()
    for line in lines:
        try:
            event = decode_event(line)
        except InvalidEvent:
            continue
        source = source_index(event)
        expected_events[(dep.topics[("usage", "billing")[source]], event.type)] += 1
    dep.cli("produce", str(mixed), "--send-invalid", "-q",
            "--rejects", str(tmp_path / "rejects.jsonl"))  # fmt: skip
    port = free_port()
    try:
        start_worker(dep, CHURNWATCH_WEB_ENABLED="true", CHURNWATCH_WEB_PORT=str(port))
        dep.wait_for(lambda: _answers(port), 60, "/metrics to answer")
        dep.wait_for(lambda: dep.progress() >= 1.0, 300, "the worker to catch up")
        kind, samples = _scrape(port)

        assert kind.startswith("text/plain")
        # prometheus_client's process and Python collectors are served beside the worker's.
        assert samples["process_resident_memory_bytes"][0][1] > 0
        assert samples["process_open_fds"][0][1] > 0
        assert "process_cpu_seconds_total" in samples
        assert samples["python_gc_objects_collected_total"]
        assert "churnwatch_worker_held_records" in samples
        events = _by(samples, "churnwatch_worker_events_total", "topic", "type")
        assert events == expected_events
        valid = sum(expected_events.values())
        assert sum(events.values()) == valid > 0

        letters = dep.read("dead_letter")
        assert len(letters) == len(junk)
        reasons = Counter(
            (reason_kind(dict(r.headers)["churnwatch-reason"].decode()),) for r in letters
        )
        dead = _by(samples, "churnwatch_worker_dead_letters_total", "reason")
        assert dead == reasons
        assert dead[("not valid JSON",)] == 1 and dead[("score",)] == 1
        assert sum(dead.values()) == len(junk)

        published = [orjson.loads(r.value) for r in dep.read("alerts")]
        alerts = _by(samples, "churnwatch_worker_alerts_total", "signal", "severity", "kind")
        assert alerts == Counter((a["signal"], a["severity"], a["kind"]) for a in published)
        assert sum(alerts.values()) == len(published) > 0

        handled, total = dep.consumed()
        assert handled == total == valid + len(junk)
        (_, count), = samples["churnwatch_worker_processing_seconds_count"]  # fmt: skip
        assert count == total, "one latency sample per record handled"
        buckets = samples["churnwatch_worker_processing_seconds_bucket"]
        assert buckets[-1] == ({"le": "+Inf"}, count)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert samples["churnwatch_worker_processing_seconds_sum"][0][1] > 0

        lag = _by(samples, "churnwatch_worker_consumer_lag", "topic", "partition")
        assert set(lag) == {
            (dep.topics[name], str(p)) for name in ("usage", "billing") for p in range(PARTITIONS)
        }
        assert set(lag.values()) == {0}

        # Idle: the endpoint still answers, and nothing of the worker's moves.
        assert _ours(_scrape(port)[1]) == _ours(samples)
    finally:
        dep.stop_all()
