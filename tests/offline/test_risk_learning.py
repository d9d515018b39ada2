"""The learning primitives: a fit that finds a planted signal, censoring, hysteresis."""

from __future__ import annotations

import numpy as np
import pytest

from stream.offline import risk_learning as rl


def _planted(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    logit = -3.0 - 2.0 * z[:, 0] + 0.0 * z[:, 1] + 1.0 * z[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return z, y


def test_fit_finds_the_planted_signs_and_ignores_noise() -> None:
    z, y = _planted()
    coef, _ = rl.fit_logistic(z, y, l2=1.0)
    assert coef[0] < -1.0
    assert coef[2] > 0.5
    assert abs(coef[1]) < 0.2


def test_fit_is_deterministic() -> None:
    z, y = _planted()
    first = rl.fit_logistic(z, y)
    again = rl.fit_logistic(z.copy(), y.copy())
    assert first[0].tobytes() == again[0].tobytes() and first[1] == again[1]


def test_fit_refuses_one_class() -> None:
    z, _ = _planted(100)
    with pytest.raises(ValueError, match="one class"):
        rl.fit_logistic(z, np.zeros(100))


def test_labels_leave_censored_rows_out() -> None:
    samples = rl.Samples(
        names=["x"],
        accounts=["churner", "churner", "stayer", "stayer"],
        days=np.array([10, 80, 10, 80]),
        x=np.zeros((4, 1)),
    )
    y, usable = rl.labels_within(samples, {"churner": 100, "stayer": None}, 120, 60)
    # churner: day 10 is 90 days before (negative, known); day 80 is 20 days before (positive)
    assert y.tolist() == [0, 1, 0, 0]
    # stayer: day 80 + 60 runs past the log's end (120): censored
    assert usable.tolist() == [True, True, True, False]


def test_episodes_open_once_and_reopen_only_after_clearing() -> None:
    values = np.array([0.1, 0.6, 0.7, 0.5, 0.6, 0.3, 0.6])
    days = np.arange(7)
    assert [s for s, _ in rl.intervals(values, days, fire=0.55, clear=0.4)] == [1, 6]
    below = rl.intervals(-values, days, fire=-0.55, clear=-0.4, above=False)
    assert [s for s, _ in below] == [1, 6]


def test_cohorts_and_danger_line() -> None:
    values = np.arange(100, dtype=float)
    y = np.where(values < 20, 1.0, 0.0)
    cohorts = rl.cohort_rates(values, y)
    assert [c["churn_rate"] for c in cohorts[:3]] == [1.0, 1.0, 0.0]
    assert rl.danger_line(cohorts, base_rate=0.2) == 19.0
    assert rl.danger_line(list(reversed(cohorts)), base_rate=0.2) is None


def test_auc_counts_ties_as_half_and_knows_perfect_and_reversed_rankings() -> None:
    y = np.array([0, 0, 1, 1], dtype=float)
    assert rl.auc(np.array([0.1, 0.2, 0.3, 0.4]), y) == 1.0
    assert rl.auc(np.array([0.4, 0.3, 0.2, 0.1]), y) == 0.0
    assert rl.auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    # one positive above both negatives, one tied with one negative: (2 + 1.5) / 4
    assert rl.auc(np.array([0.1, 0.5, 0.5, 0.9]), y) == pytest.approx(0.875)


def _two_segments(seed: int = 4) -> tuple[rl.Samples, np.ndarray]:
    """Churn follows metric 0 in "a" and metric 1 in "b": the pooled fit blurs both."""
    rng = np.random.default_rng(seed)
    accounts, segments, rows, labels = [], [], [], []
    for k in range(600):
        segment = "a" if k % 2 else "b"
        level = rng.normal(size=2)
        driver = level[0] if segment == "a" else level[1]
        churns = rng.random() < 1 / (1 + np.exp(3.0 + 2.5 * driver))
        for _ in range(10):
            accounts.append(f"acct-{k:04d}")
            segments.append(segment)
            rows.append(np.exp(level + rng.normal(scale=0.2, size=2)))
            labels.append(float(churns))
    samples = rl.Samples(["m0", "m1"], accounts, np.arange(len(accounts)), np.array(rows),
                         segments)  # fmt: skip
    return samples, np.array(labels)


def test_segments_get_weights_of_their_own_when_what_predicts_churn_differs() -> None:
    from stream.offline import risk_calibration as rc

    samples, y = _two_segments()
    rows = np.arange(len(samples))
    own, notes = rc._segment_weights(samples, rl.transform(samples.x), y, rows, l2=1.0)
    assert set(own) == {"a", "b"}, notes
    # each segment's weight sits on its own driver (scores fall as the driver rises)
    a, b = own["a"].coefficients, own["b"].coefficients
    assert a[0] < 0 and abs(a[0]) > 3 * abs(a[1])
    assert b[1] < 0 and abs(b[1]) > 3 * abs(b[0])
    assert all("own weights" in note for note in notes.values())


def test_a_segment_with_few_churners_keeps_the_shared_weights() -> None:
    from stream.offline import risk_calibration as rc

    samples, y = _two_segments()
    y[np.array(samples.segments) == "b"] = 0.0
    rows = np.arange(len(samples))
    own, notes = rc._segment_weights(samples, rl.transform(samples.x), y, rows, l2=1.0)
    assert "b" not in own
    assert notes["b"].startswith("shared weights: 0 churned accounts")


def test_episodes_of_several_signals_merge_into_one_per_account() -> None:
    rules = {"a": [(10, 20), (30, None)], "b": [(5, 8)]}
    model = {"a": [(15, 40), (50, 60)], "c": [(1, None)]}
    # a: 10-20 and 15-40 overlap (one opening), 30-open keeps it open, 50 adds nothing
    assert rl.merged_openings(rules, model) == {"a": [10], "b": [5], "c": [1]}
    # a resolved episode, then a later one: two openings
    assert rl.merged_openings({"a": [(1, 3)]}, {"a": [(3, 9)]}) == {"a": [1, 3]}


def test_intervals_close_with_hysteresis_and_stay_open_at_the_end() -> None:
    values = np.array([0.1, 0.6, 0.5, 0.3, 0.7, 0.8])
    assert rl.intervals(values, np.arange(6), fire=0.55, clear=0.4) == [(1, 3), (4, None)]


def test_rule_spans_pair_each_signal_s_openings_with_its_resolutions() -> None:
    from stream.offline.backtest import Mark
    from stream.offline.risk_calibration import rule_spans

    marks = [
        Mark("a", "account_at_risk", "opened", 100),
        Mark("a", "payment_failed", "opened", 100, overall=False),
        Mark("a", "nps_detractor", "opened", 150, overall=False),
        Mark("a", "payment_failed", "resolved", 200, overall=False),
        Mark("b", "payment_failed", "opened", 100),
    ]
    assert rule_spans(marks, {"a"}) == {
        "payment_failed": {"a": [(100, 200)]},
        "nps_detractor": {"a": [(150, None)]},
    }
