"""The learned churn-risk signal at run time: a dot product over the feature vector, weights
per segment, explanations in plain words, and a model file that cannot be misaligned."""

from __future__ import annotations

import math

import pytest

from stream.core.features import feature_names, feature_vector
from stream.core.policy import PolicyError, parse_policy
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS
from tests.helpers import Harness, at

NAMES = feature_names(())
SILENCE = NAMES.index("days_since_use")


def _weights(weight: float = 0.0, intercept: float = -10.0, deciles=None) -> dict:
    coefficients = [0.0] * len(NAMES)
    coefficients[SILENCE] = weight
    out = {
        "coefficients": coefficients,
        "means": [0.0] * len(NAMES),
        "scales": [1.0] * len(NAMES),
        "intercept": intercept,
    }
    if deciles is not None:
        out["retained_deciles"] = deciles
    return out


# p = sigmoid(2 * (log1p(days) - log1p(5))): exactly one half five days after the last use.
SILENT_5_DAYS = _weights(2.0, -2.0 * math.log1p(5.0))


def _harness(segments: dict | None = None, **shared) -> Harness:
    model = {"features": NAMES, **(shared or SILENT_5_DAYS), "segments": segments or {}}
    return Harness(
        risk_model=model, defaults={"churn_risk": {"threshold": 0.5, "high_threshold": 0.9}}
    )


def test_the_risk_opens_when_the_learned_probability_crosses_and_resolves_when_use_returns():
    h = _harness()
    h.subscribe(day=0, plan="pro")
    h.daily_logins(range(0, 20), 3)
    h.tick(at(30, 0.5))
    opened = h.of("churn_risk", "opened")
    assert len(opened) == 1
    # last use on day 19 at 10:00; the close of day 24 is 5.58 days later (p > 0.5), day 23's
    # is 4.58 (p < 0.5)
    assert opened[0].ts == at(25, 0)
    assert opened[0].value >= 0.5
    assert "days since anyone used the product" in opened[0].explanation
    h.daily_logins(range(31, 33), 3)
    h.tick(at(34, 0.5))
    assert len(h.of("churn_risk", "resolved")) == 1


def test_a_segment_with_weights_of_its_own_is_scored_by_them():
    never = _weights(0.0, -10.0)
    h = _harness(segments={"enterprise": never})
    h.subscribe("big", day=0, plan="enterprise")
    h.subscribe("small", day=0, plan="pro")
    for account in ("big", "small"):
        h.daily_logins(range(0, 20), 3, account=account)
    h.tick(at(40, 0.5))
    assert h.of("churn_risk", account="big") == []
    assert len(h.of("churn_risk", "opened", account="small")) == 1


def test_the_explanation_places_the_metric_among_the_segments_retained_accounts():
    deciles = [[k / 10 for k in range(1, 10)] for _ in NAMES]  # retained: used within a day
    own = {**SILENT_5_DAYS, "retained_deciles": deciles}
    h = _harness(segments={"pro": own})
    h.subscribe(day=0, plan="pro")
    h.daily_logins(range(0, 20), 3)
    h.tick(at(40, 0.5))
    (opened,) = h.of("churn_risk", "opened")
    assert "in the top 10% of retained pro accounts" in opened.explanation


def test_a_segments_weights_must_fit_the_feature_list():
    short = {**SILENT_5_DAYS, "coefficients": [1.0]}
    data = {"risk_model": {"features": NAMES, **SILENT_5_DAYS, "segments": {"pro": short}}}
    with pytest.raises(PolicyError, match=r"segments\.pro\.coefficients"):
        parse_policy(data)


def test_feature_depth_per_login_reads_the_tracked_buckets():
    names = feature_names(("reports",))
    model = {"tracked_features": ["reports"], "features": names, **_extended(names)}
    policy = parse_policy({"risk_model": model})
    h = Harness(policy=policy)
    h.subscribe(day=0)
    for day in range(14):
        h.send("login", ts=at(day, 9), user_id="u1")
        h.send("login", ts=at(day, 10), user_id="u2")
        h.send("feature_used", ts=at(day, 11), user_id="u1", feature="reports")
    h.tick(at(15, 0.5))
    acct: AccountState = h.engine.accounts["acct-1"]
    values = feature_vector(acct, acct.closed_day, (acct.closed_day + 1) * DAY_MS, 2)
    assert values[names.index("uses_of_reports_per_login")] == pytest.approx(0.5)
    assert values[names.index("uses_of_other_per_login")] == 0.0
    # 14 uses over the 15 days observed (day 14 had none)
    assert values[names.index("uses_of_reports_per_week")] == pytest.approx(14 * 7 / 15)
    assert values[names.index("renewals_next_60d")] == 2.0  # monthly: two renewals in 60 days


def _extended(names: list[str]) -> dict:
    return {
        "coefficients": [0.0] * len(names),
        "means": [0.0] * len(names),
        "scales": [1.0] * len(names),
        "intercept": -10.0,
    }


def test_yes_no_and_plan_metrics_read_as_plain_facts_not_percentiles():
    coefficients = [0.0] * len(NAMES)
    coefficients[NAMES.index("first_term")] = 5.0
    coefficients[NAMES.index("billing_period_days")] = 1.0
    deciles = [[k / 10 for k in range(1, 10)] for _ in NAMES]
    model = {**_weights(), "coefficients": coefficients, "intercept": -1.0,
             "retained_deciles": deciles}  # fmt: skip
    h = _harness(**model)
    h.subscribe(day=0, plan="pro", started_days_ago=None)  # a new subscription: first term
    h.daily_logins(range(0, 6), 3)
    h.tick(at(7, 0.5))
    (opened,) = h.of("churn_risk", "opened")
    assert "mostly from: in its first billing term; on a monthly plan" in opened.explanation
    assert "percentile" not in opened.explanation
