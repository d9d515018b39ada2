"""Alert explanations a CS manager can check: the metric that fired, numbers that add up.

Issue 12: "-0%" in texts, "within 0% of the baseline" on recoveries, "2 of 8 seats active
(25.1%)" where the percentage came from an estimate and the counts from rounded values, and
onboarding_stall firing on active days while its metric and text described adoption.
"""

from __future__ import annotations

import re

import pytest

from schemas.alerts import AlertEvent
from stream.core.engine import PartitionedEngine
from stream.core.policy import parse_policy
from stream.core.signals.base import fmt, pct
from stream.core.signals.usage import against_baseline
from stream.devtools.simulator import Noise, SimConfig, generate, serialize
from stream.run.replay import replay
from tests.helpers import Harness, at

# --- the shared formatters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (-0.004, "0"),
        (-0.0, "0"),
        (0.004, "0"),
        (-0.4, "-0.4"),
        (-12.345, "-12.3"),  # the same digits as +12.345: the size sets them, not the sign
        (12.345, "12.3"),
        (-150.2, "-150"),
        (9.999, "10"),
        (99.96, "100"),
    ],
)
def test_fmt_never_prints_minus_zero_and_rounds_both_signs_alike(value, text):
    assert fmt(value) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (-0.00004, "0%"),  # a tiny negative change: never "-0%"
        (-0.0, "0%"),
        (0.0, "0%"),
        (0.25, "25%"),
        (0.754, "75.4%"),
        (1 / 3, "33.3%"),
        (0.0244, "2.44%"),
        (0.01, "1%"),
        (-0.1, "-10%"),
    ],
)
def test_pct_is_the_one_percentage_format(share, text):
    assert pct(share) == text


@pytest.mark.parametrize(
    ("current", "baseline", "text"),
    [
        (14.0, 14.0, "back at the 14/week baseline"),
        (13.9999, 14.0, "back at the 14/week baseline"),  # a gap that rounds to no percentage
        (14.0001, 14.0, "back at the 14/week baseline"),  # and never "-0% below"
        (12.0, 14.0, "back within 14.3% of the 14/week baseline"),
        (16.0, 14.0, "14.3% above the 14/week baseline"),
        (1.0, 0.0, "above the 0/week baseline"),
    ],
)
def test_a_recovery_says_where_the_measure_stands_against_its_baseline(current, baseline, text):
    assert against_baseline(current, baseline) == text


# --- drops -------------------------------------------------------------------------------


def test_a_drop_recovery_says_back_within_the_gap_it_closed_to():
    h = Harness()
    h.subscribe(seats=10, day=0)
    h.daily_logins(range(0, 70), 10)
    h.daily_logins(range(70, 84), 2)
    h.daily_logins(range(84, 130), 10)
    h.tick(at(131))
    (resolved,) = h.of("engagement_drop", "resolved")
    assert (
        resolved.resolution
        == "Logins recovered to 50/week, back within 18% of the 61/week baseline"
    )
    assert (resolved.value, resolved.baseline) == (50.0, 61.0)
    assert pct(1 - resolved.value / resolved.baseline) == "18%", "the shown numbers give it"


def test_a_silence_that_resumes_above_its_baseline_says_by_how_much():
    h = Harness()
    h.subscribe(seats=10, day=0)
    h.daily_logins(range(0, 70), {d: 1 for d in range(0, 70) if d % 7 in (1, 4)})
    h.tick(at(88))
    h.daily_logins(range(88, 116), {d: 1 for d in range(88, 116) if d % 7 in (1, 4)})
    h.tick(at(117))
    (resolved,) = h.of("engagement_drop", "resolved")
    assert resolved.resolution == "Logins resumed at 1.5/week, 9.09% above the 1.38/week baseline"
    assert (resolved.value, resolved.baseline) == (1.5, 1.375)


# --- footprint ---------------------------------------------------------------------------


def test_footprint_counts_and_percentage_agree():
    h = Harness()
    h.subscribe(seats=8, day=0)
    h.daily_logins(range(0, 40), 4, users=2)  # the user estimate is 2.004, not 2
    h.tick(at(40, 0.5))
    (opened,) = h.of("footprint_shrink", "opened")
    assert opened.explanation == (
        "2 of 8 licensed seats active in the last 28 days (25%, alert below 30%)"
    )
    assert opened.metric == "active_users_per_seat"
    assert (opened.value, opened.baseline, opened.threshold) == (0.25, 8.0, 0.3)


# --- onboarding --------------------------------------------------------------------------


def _onboarding(seats: int, logins: dict[int, int] | int, until: int = 20) -> Harness:
    h = Harness()
    h.subscribe(started_days_ago=None, day=0, seats=seats)
    h.daily_logins(range(0, until), logins, users=1)
    h.tick(at(until, 0.5))
    return h


def test_onboarding_fired_on_active_days_reports_active_days():
    # The one seat is in use (100% adoption, far above the 14% expected by day 14), but on
    # two days of fourteen: the activity criterion fired, so that is what the alert shows.
    h = _onboarding(seats=1, logins={2: 1, 9: 1}, until=16)
    (opened,) = h.of("onboarding_stall", "opened")
    assert opened.severity == "medium"
    assert opened.explanation == (
        "Day 14 of onboarding: active on 2 of the last 14 days (at least 3 expected)"
    )
    assert opened.metric == "active_days"
    assert (opened.value, opened.baseline, opened.threshold, opened.window_days) == (
        2.0, None, 3.0, 14,
    )  # fmt: skip
    assert "seats active" not in opened.explanation

    h.daily_logins(range(16, 18), 1, users=1)  # a third active day in the window
    h.tick(at(18, 0.5))
    (resolved,) = h.of("onboarding_stall", "resolved")
    assert resolved.resolution == (
        "Day 17 of onboarding: 1 of 1 seats active so far (100% against 17% expected by now), "
        "active on 3 of the last 14 days (at least 3 expected)"
    )
    assert (resolved.metric, resolved.value, resolved.baseline) == ("adoption", 1.0, 0.17)


def test_onboarding_fired_on_adoption_reports_adoption_alone():
    h = _onboarding(seats=20, logins=1)  # one user, every day: active enough, too narrow
    (opened,) = h.of("onboarding_stall", "opened")
    assert opened.severity == "medium"
    assert opened.explanation == (
        "Day 14 of onboarding: 1 of 20 seats active so far (5% against 14% expected by now, "
        "alert below 7%)"
    )
    assert opened.metric == "adoption"
    assert (opened.value, opened.baseline, opened.threshold, opened.window_days) == (
        0.05, 0.14, 0.07, 15,
    )  # fmt: skip


def test_onboarding_fired_on_both_leads_with_adoption_and_names_both():
    h = _onboarding(seats=20, logins={2: 1, 9: 1})
    (opened,) = h.of("onboarding_stall", "opened")
    assert opened.severity == "high"
    assert opened.explanation == (
        "Day 14 of onboarding: 1 of 20 seats active so far (5% against 14% expected by now, "
        "alert below 7%), and active on 2 of the last 14 days (at least 3 expected)"
    )
    assert (opened.metric, opened.value, opened.threshold) == ("adoption", 0.05, 0.07)


def test_onboarding_escalation_switches_to_the_criterion_now_firing_and_graduation_to_tenure():
    h = _onboarding(seats=10, logins={d: 1 for d in range(100) if d % 6 == 0}, until=100)
    opened, updated, resolved = h.of("onboarding_stall")
    assert (opened.kind, opened.metric) == ("opened", "active_days")
    assert updated.kind == "updated" and updated.severity == "high"
    assert updated.metric == "adoption"
    assert updated.explanation == (
        "Day 21 of onboarding: 1 of 10 seats active so far (10% against 21% expected by now, "
        "alert below 10.5%), and active on 2 of the last 14 days (at least 3 expected)"
    )
    assert resolved.resolution == "left the 90-day onboarding"
    assert (resolved.metric, resolved.value, resolved.threshold) == ("tenure_days", 90.0, 90.0)


# --- a simulated log: every text against its own numbers ---------------------------------


@pytest.fixture(scope="module")
def simulated() -> list[AlertEvent]:
    config = SimConfig(accounts=150, days=120, seed=5)
    out: list[bytes] = []
    policy = parse_policy({"alerting": {"episodes": "signal"}})
    lines = serialize(generate(config, []), Noise(seed=config.seed))
    replay(enumerate(lines, 1), PartitionedEngine(policy), out.append, _refuse)
    return [AlertEvent.model_validate_json(raw) for raw in out]


def _refuse(record: bytes) -> None:
    raise AssertionError(f"the simulated log has no bad lines: {record!r}")


def _said(alert: AlertEvent) -> str:
    ended = alert.kind in ("resolved", "churned")
    return alert.resolution if ended and alert.resolution else alert.explanation


def test_no_text_prints_a_negative_or_meaningless_zero_percentage(simulated):
    for alert in simulated:
        text = _said(alert)
        assert not re.search(r"-0(\.0*)?%", text), text
        assert not re.search(r"(?<![\d.])0% (below|above|of)", text), text
        assert "within 0%" not in text, text


def test_seat_counts_divide_out_to_the_percentage_shown(simulated):
    seen = 0
    for alert in simulated:
        for users, seats, shown in re.findall(
            r"(\d+) of (\d+) \D*?active .*?\(([\d.]+%)", _said(alert)
        ):
            assert pct(int(users) / int(seats)) == shown, _said(alert)
            if alert.metric in ("adoption", "active_users_per_seat"):
                assert alert.value == round(int(users) / int(seats), 4)
            seen += 1
    assert seen > 10


def test_onboarding_records_describe_the_criterion_in_their_numbers(simulated):
    kinds = set()
    for alert in simulated:
        if alert.signal != "onboarding_stall" or alert.kind in ("resolved", "churned"):
            continue
        kinds.add(alert.metric)
        if alert.metric == "active_days":
            assert alert.explanation.endswith(
                f": active on {alert.value:.0f} of the last {alert.window_days} days "
                f"(at least {alert.threshold:.0f} expected)"
            )
            assert alert.value < alert.threshold
        else:
            assert alert.metric == "adoption"
            assert f"alert below {pct(alert.threshold)})" in alert.explanation
            assert alert.value < alert.threshold
    assert kinds == {"active_days", "adoption"}
