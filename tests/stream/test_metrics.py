"""The Prometheus text the services expose, through ``prometheus_client``."""

from prometheus_client import Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from stream.run.metrics import Registry, exposition


def _samples(registry) -> dict[str, list[tuple[dict[str, str], float]]]:
    body, _ = exposition(registry)
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_counts_stay_exact_past_a_million_and_labels_are_escaped():
    metrics = Registry()
    counter = Counter("x_total", "things", ("reason",), registry=metrics)
    counter.labels('say "no"\\n').inc(1_234_567)
    counter.labels("half").inc(0.5)
    counter.labels("an int").inc(7)
    body, kind = exposition(metrics)
    assert kind.startswith("text/plain")
    assert b'x_total{reason="say \\"no\\"\\\\n"} ' in body  # escaped on the wire
    values = {labels["reason"]: value for labels, value in _samples(metrics)["x_total"]}
    assert values == {'say "no"\\n': 1_234_567, "half": 0.5, "an int": 7}


def test_histogram_buckets_are_cumulative():
    metrics = Registry()
    time = Histogram("t_seconds", "time", buckets=(0.1, 1.0), registry=metrics)
    for value in (0.05, 0.5, 0.5, 3.0):
        time.observe(value)
    samples = _samples(metrics)
    buckets = {labels["le"]: value for labels, value in samples["t_seconds_bucket"]}
    assert buckets == {"0.1": 1, "1.0": 3, "+Inf": 4}
    assert samples["t_seconds_count"] == [({}, 4)]
    assert samples["t_seconds_sum"] == [({}, 4.05)]


def test_each_registry_has_the_process_collectors_and_series_of_its_own():
    one, two = Registry(), Registry()
    Counter("x_total", "things", registry=one).inc(3)
    Counter("x_total", "things", registry=two).inc(5)
    first, second = _samples(one), _samples(two)
    assert first["x_total"] == [({}, 3)] and second["x_total"] == [({}, 5)]
    for samples in (first, second):
        assert samples["process_resident_memory_bytes"][0][1] > 0
        assert samples["process_open_fds"][0][1] > 0
        assert "process_cpu_seconds_total" in samples
        assert {labels["generation"] for labels, _ in samples["python_gc_objects_collected_total"]}
        assert samples["python_info"][0][0]["implementation"]
