"""``churnwatch serve``'s /metrics: the feed's series and the API's on one registry, beside
prometheus_client's process collectors, as Prometheus's own parser reads them."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

import redis
from aiohttp.test_utils import TestClient, TestServer
from kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream.core.policy import load_policy
from stream.kafka.settings import load_settings
from stream.sinks.serve import build_service


def _scrape(client: TestClient, loop: asyncio.AbstractEventLoop):
    async def go():
        await client.get("/accounts/at-risk?limit=3")
        await client.get("/accounts/at-risk?limit=0")
        response = await client.get("/metrics")
        return response.headers["Content-Type"], await response.text()

    kind, text = loop.run_until_complete(go())
    kinds, samples = {}, {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return kind, kinds, samples


def _by(samples, name: str, *labels: str) -> Counter:
    return Counter({tuple(lab[k] for k in labels): value for lab, value in samples.get(name, [])})


def test_serve_metrics_count_the_feed_and_the_api(store, replayed):
    settings = load_settings({})
    app, feed = build_service(settings, load_policy(None), store)
    alerts = replayed[1][:60]

    # One failed Redis write, retried: counted, and Redis is up again after it.
    apply, failures = store.apply, [redis.ConnectionError("down")]

    def flaky(batch):
        if failures:
            raise failures.pop()
        return apply(batch)

    store.apply = flaky
    assert feed._write(alerts, [])
    ends = {TopicPartition(settings.alerts_topic, 0): 70}
    feed._lag(SimpleNamespace(assignment=lambda: set(ends), end_offsets=lambda tps: ends,
                              position=lambda tp: 60))  # fmt: skip
    feed.stop.set()  # the feed thread the app starts ends at once: no Kafka here

    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    try:
        kind, kinds, samples = _scrape(client, loop)
    finally:
        loop.run_until_complete(client.close())
        loop.close()

    assert kind.startswith("text/plain") and "charset=utf-8" in kind
    assert kinds["churnwatch_readmodel_records"] == "counter"
    assert kinds["churnwatch_http_request_seconds"] == "histogram"
    records = _by(samples, "churnwatch_readmodel_records_total", "signal", "severity", "kind")
    assert records == Counter((a["signal"], a["severity"], a["kind"]) for a in alerts)
    applied = samples["churnwatch_readmodel_applied_total"][0][1]
    assert 0 < applied <= len(alerts)
    assert samples["churnwatch_readmodel_invalid_total"] == [({}, 0)]
    assert samples["churnwatch_redis_errors_total"] == [({}, 1)]
    assert samples["churnwatch_redis_up"] == [({}, 1)]
    lag = _by(samples, "churnwatch_readmodel_lag", "topic", "partition")
    assert lag == {(settings.alerts_topic, "0"): 10}

    requests = _by(samples, "churnwatch_http_requests_total", "route", "status")
    assert requests == {("/accounts/at-risk", "200"): 1, ("/accounts/at-risk", "400"): 1}
    latency = _by(samples, "churnwatch_http_request_seconds_count", "route")
    assert latency == {("/accounts/at-risk",): 2}
    assert samples["churnwatch_http_request_seconds_bucket"][-1][0]["le"] == "+Inf"

    assert samples["process_resident_memory_bytes"][0][1] > 0
    assert samples["process_open_fds"][0][1] > 0
    assert "process_cpu_seconds_total" in samples
    assert samples["python_gc_objects_collected_total"]
