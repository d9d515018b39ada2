"""Usage detectors: drops against the account's own past and the danger-zone level."""

from __future__ import annotations

from datetime import timedelta

from stream.core import ring
from stream.core.timeutil import DAY_MS, to_ms
from tests.helpers import Harness, at


def _established(h: Harness, seats: int = 10) -> None:
    h.subscribe(seats=seats, day=0)


def test_clear_decline_opens_one_engagement_alert_with_its_numbers():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 70), 10)
    h.daily_logins(range(70, 84), 2)
    h.tick(at(85))
    opened = h.of("engagement_drop", "opened")
    assert len(opened) == 1, "one episode, however many days the decline lasts"
    alert = opened[0]
    assert at(70, 0) < alert.ts <= at(84, 0)
    assert alert.metric == "logins_per_week"
    assert alert.baseline == 70.0
    assert alert.value <= alert.threshold == 42.0
    assert "fell" in alert.explanation and "70/week" in alert.explanation
    assert [p.value for p in alert.evidence.daily][-1] == 2.0
    assert alert.trigger == "day_close"
    assert alert.health.usage <= 50 and alert.health.overall == alert.health.usage


def test_no_alert_while_usage_is_steady():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 100), 6)
    h.tick(at(100, 0.5))  # closes day 99, the last one with data
    assert h.of("engagement_drop") == []
    assert h.of("time_in_product_drop") == []
    assert h.engine.accounts["acct-1"].risk_of("engagement_drop") == 0


def test_low_volume_account_below_the_floor_is_not_judged_on_a_drop():
    h = Harness(defaults={"engagement_drop": {"silence_days": 60}})
    _established(h)
    # Two logins a week, then one: a 50% drop, but under the 3/week volume floor.
    h.daily_logins(range(0, 70), {d: 1 for d in range(0, 70) if d % 7 in (1, 4)})
    h.daily_logins(range(70, 84), {d: 1 for d in range(70, 84) if d % 7 == 1})
    h.tick(at(85))
    assert h.of("engagement_drop") == []


def test_drop_within_the_accounts_own_noise_needs_the_significance_gate():
    noisy = {d: (8 if d % 2 else 0) for d in range(0, 70)}  # 4/day on average, very uneven
    dip = {d: (4 if d % 2 else 0) for d in range(70, 84)}
    results = {}
    for min_z in (0.0, 2.0):
        h = Harness(defaults={"engagement_drop": {"min_z": min_z, "drop_medium": 0.45}})
        _established(h)
        h.daily_logins(range(0, 70), noisy)
        h.daily_logins(range(70, 84), dip)
        h.tick(at(85))
        results[min_z] = len(h.of("engagement_drop", "opened"))
    assert results[0.0] == 1, "the 50% drop crosses the line on its face"
    assert results[2.0] == 0, "but it is within two standard deviations of the account's days"


def test_brand_new_account_is_not_judged_on_a_history_it_lacks():
    h = Harness()
    h.subscribe(started_days_ago=None, day=0)
    h.daily_logins(range(0, 20), 30)
    h.daily_logins(range(20, 30), 3)  # steep fall, but only 20 days of history
    h.tick(at(31))
    assert h.of("engagement_drop") == []


def test_total_silence_is_caught_by_other_accounts_traffic_on_the_right_day():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 60), 5)  # last activity on day 59
    assert h.of("engagement_drop") == [], "silence alone sends no events"
    h.tick(at(75))
    records = h.of("engagement_drop")
    assert records, "the clock advanced by other accounts' traffic judges the silent one"
    assert len({r.alert_id for r in records}) == 1, "the fall and the silence are one episode"
    critical = [r for r in records if r.severity == "critical"]
    assert critical[0].kind in ("opened", "updated")
    # Day 59 was the last active day; the close of day 69 is the tenth silent day.
    assert critical[0].ts == at(70, 0)
    assert critical[0].metric == "days_without_activity" and critical[0].value == 10
    assert "No product activity for 10 days" in critical[0].explanation
    assert all(r.ts < at(70, 0) for r in records if r.severity != "critical")


def test_silence_without_any_traffic_waits_for_the_clock():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 60), 5)
    assert h.of("engagement_drop") == []
    day58 = to_ms(at(58)) // DAY_MS
    assert h.engine.accounts["acct-1"].closed_day == day58, "day 59 is not over in event time"


def test_recovery_resolves_and_the_band_in_between_holds():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 70), 10)
    h.daily_logins(range(70, 84), 2)
    h.daily_logins(range(84, 91), 7)  # partial recovery: drop still between 25% and 40%
    h.tick(at(91, 0) + timedelta(minutes=10))
    assert len(h.of("engagement_drop", "opened")) == 1
    assert h.of("engagement_drop", "resolved") == []
    h.daily_logins(range(91, 110), 10)
    h.tick(at(111))
    resolved = h.of("engagement_drop", "resolved")
    assert len(resolved) == 1
    assert resolved[0].alert_id == h.of("engagement_drop", "opened")[0].alert_id
    assert resolved[0].resolution and "recovered" in resolved[0].resolution


def test_time_in_product_drop_fires_when_sessions_shrink_but_logins_do_not():
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 70), 6, minutes=30)
    h.daily_logins(range(70, 84), 6, minutes=6)
    h.tick(at(85))
    assert len(h.of("time_in_product_drop", "opened")) == 1
    assert h.of("engagement_drop") == []
    alert = h.of("time_in_product_drop", "opened")[0]
    assert alert.metric == "minutes_per_week" and alert.baseline == 1260.0


def test_late_event_inside_the_allowance_lands_in_its_own_day():
    h = Harness(stream={"allowed_lateness_seconds": 600})
    _established(h)
    h.send("login", ts=at(3, 23.9))
    h.send("login", ts=at(4, 0.05))  # the next day, 3 minutes after midnight
    h.send("login", ts=at(3, 23.95))  # arrives after it, 6 minutes late: inside the allowance
    acct = h.engine.accounts["acct-1"]
    day3 = to_ms(at(3, 0)) // DAY_MS
    assert ring.window_sum(acct.logins, day3, day3) == 2
    assert h.engine.stats["too_late"] == 0


def test_event_later_than_the_allowance_is_counted_and_dropped():
    h = Harness(stream={"allowed_lateness_seconds": 600})
    _established(h)
    h.send("login", ts=at(4, 1))
    h.send("login", ts=at(3, 23))  # two hours behind the clock
    acct = h.engine.accounts["acct-1"]
    day3 = to_ms(at(3, 0)) // DAY_MS
    assert ring.window_sum(acct.logins, day3, day3) == 0
    assert h.engine.stats["too_late"] == 1


def test_redelivered_event_ids_do_not_double_count():
    h = Harness()
    _established(h)
    for _ in range(3):
        h.send("login", ts=at(2), event_id="same-id", user_id="u1")
    acct = h.engine.accounts["acct-1"]
    day = to_ms(at(2)) // DAY_MS
    assert ring.window_sum(acct.logins, day, day) == 1
    assert h.engine.stats["duplicate"] == 2


def test_danger_zone_catches_an_account_weak_from_its_first_weeks_before_renewal():
    h = Harness()
    h.subscribe(started_days_ago=None, day=0, seats=10)
    # 10 seats and 2 logins a week for the whole account: 0.2 logins/seat/week.
    h.daily_logins(range(0, 40), {d: 1 for d in range(40) if d % 7 in (1, 4)})
    h.tick(at(41))
    opened = h.of("danger_zone", "opened")
    assert len(opened) == 1
    alert = opened[0]
    assert alert.ts < at(30, 0), "warned before the first monthly renewal"
    assert alert.account.stage == "onboarding"
    assert alert.threshold == 0.4, "judged against the onboarding line, not the established one"
    assert "below the danger-zone line" in alert.explanation
    assert h.of("engagement_drop") == [], "it never dropped: only a level detector sees it"


def test_danger_zone_leaves_a_healthy_new_account_alone():
    h = Harness()
    h.subscribe(started_days_ago=None, day=0, seats=10)
    h.daily_logins(range(0, 40), 12, users=8)
    h.tick(at(41))
    assert h.of("danger_zone") == []


def test_danger_zone_does_not_judge_a_tiny_account_on_noise():
    h = Harness()
    _established(h, seats=1)
    # One seat, 2 logins a week: 2/seat/week, then one quiet week (0.5/seat/week over 28 days
    # is under the 0.6 line on its face, but 2 logins in 28 days is not evidence).
    h.daily_logins(range(0, 40), {d: 1 for d in range(40) if d % 7 in (1, 4)})
    h.daily_logins(range(40, 68), {41: 1, 55: 1})
    h.tick(at(69))
    assert h.of("danger_zone") == []


def test_segment_change_mid_window_switches_the_line_it_is_judged_against():
    h = Harness(segments={"enterprise": {"danger_zone": {"line": 3.0, "min_z": 0}}})
    _established(h, seats=10)
    h.daily_logins(range(0, 35), 20, users=10)  # 14 logins/seat/week: far above any line
    assert h.of("danger_zone") == []
    h.send(
        "plan_changed",
        ts=at(35, 9),
        previous_plan="pro",
        new_plan="enterprise",
        previous_mrr=300,
        new_mrr=300,
        segment="enterprise",
    )
    h.daily_logins(range(35, 40), 2, users=2)
    h.tick(at(60))
    opened = h.of("danger_zone", "opened")
    assert opened and opened[0].threshold == 3.0
    assert opened[0].account.segment == "enterprise"


def test_silence_on_a_low_volume_account_resolves_when_it_is_active_again():
    # Two logins a week: under the 3/week drop floor, over the 1/week silence floor.
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 70), {d: 1 for d in range(0, 70) if d % 7 in (1, 4)})
    h.tick(at(88))  # 20 days without a login: at two a week, chance alone gives 16 at most
    opened = h.of("engagement_drop", "opened")
    assert len(opened) == 1 and opened[0].severity == "critical"
    # Back to its own two logins a week: the episode must not stay open under the floor.
    h.daily_logins(range(88, 116), {d: 1 for d in range(88, 116) if d % 7 in (1, 4)})
    h.tick(at(117))
    resolved = h.of("engagement_drop", "resolved")
    assert len(resolved) == 1, "the silence episode resolves once the account is active again"
    assert "resumed" in resolved[0].explanation and "-0" not in resolved[0].explanation
    assert not h.engine.accounts["acct-1"].is_open("engagement_drop")


def test_a_sparse_account_s_usual_gaps_are_not_silence():
    # Two logins a week: ten quiet days happen by chance about one time in sixteen at that
    # pace, so silence waits for a gap that pace makes unlikely (ln(100) / (2/7) = 16.1 days).
    h = Harness()
    _established(h)
    h.daily_logins(range(0, 70), {d: 1 for d in range(0, 70) if d % 7 in (1, 4)})
    h.tick(at(81, 0.5))  # the close of day 80: 12 quiet days
    assert h.of("engagement_drop") == []
    h.tick(at(86, 0.5))  # the close of day 85: 17 quiet days
    (opened,) = h.of("engagement_drop", "opened")
    assert opened.severity == "critical" and opened.threshold == 16.1
    assert "happen by chance less than 1% of the time" in opened.explanation


def test_explanations_never_print_minus_zero():
    from stream.core.signals.base import fmt

    assert fmt(-0.0) == "0" and fmt(-0.001) == "0" and fmt(0.004) == "0"
    assert fmt(-5.0) == "-5" and fmt(12.25) == "12.2"
