"""The Prometheus text the services expose."""

from stream.run.metrics import Registry


def test_counts_stay_exact_past_a_million_and_labels_are_escaped():
    metrics = Registry()
    metrics.describe("x_total", "counter", "things")
    metrics.inc("x_total", 1_234_567, reason='say "no"\\n')
    metrics.inc("x_total", 0.5, reason="half")
    metrics.set("x_total", 7, reason="an int")  # as the worker sets its counts
    text = metrics.render()
    assert 'x_total{reason="say \\"no\\"\\\\n"} 1234567' in text
    assert 'x_total{reason="half"} 0.5' in text
    assert 'x_total{reason="an int"} 7' in text


def test_histogram_buckets_are_cumulative():
    metrics = Registry()
    metrics.describe("t_seconds", "histogram", "time", buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 3.0):
        metrics.observe("t_seconds", value)
    text = metrics.render()
    assert 't_seconds_bucket{le="0.1"} 1' in text
    assert 't_seconds_bucket{le="1"} 3' in text
    assert 't_seconds_bucket{le="+Inf"} 4' in text
    assert "t_seconds_count 4" in text and "t_seconds_sum 4.05" in text
