"""Adoption, billing and voice-of-customer detectors."""

from __future__ import annotations

from stream.core.timeutil import DAY_MS, to_ms
from tests.helpers import Harness, at


def only(alerts, signal):
    """Billing events close the days before them too; look at one signal's records."""
    return [(a.kind, a.severity) for a in alerts if a.signal == signal]


# --- adoption ----------------------------------------------------------------------------


def test_footprint_fires_when_few_licensed_seats_are_used():
    h = Harness()
    h.subscribe(seats=20, day=0)
    h.daily_logins(range(0, 40), 4, users=3)  # 3 of 20 seats: 15%
    h.tick(at(40, 0.5))
    opened = h.of("footprint_shrink", "opened")
    assert len(opened) == 1
    assert opened[0].severity == "medium"
    assert opened[0].value < 0.3 and opened[0].baseline == 20
    assert "of 20 licensed seats active" in opened[0].explanation


def test_footprint_is_quiet_when_most_seats_are_active():
    h = Harness()
    h.subscribe(seats=20, day=0)
    h.daily_logins(range(0, 40), 16, users=16)
    h.tick(at(40, 0.5))
    assert h.of("footprint_shrink") == []


def test_footprint_ignores_accounts_with_too_few_seats():
    h = Harness()
    h.subscribe(seats=2, day=0)
    h.daily_logins(range(0, 40), {d: 1 for d in range(40) if d % 5 == 0}, users=1)
    h.tick(at(40, 0.5))
    assert h.of("footprint_shrink") == []


def test_onboarding_stall_is_judged_against_the_onboarding_profile():
    h = Harness()
    h.subscribe(started_days_ago=None, day=0, seats=20)
    h.daily_logins(range(0, 20), {2: 1, 9: 1}, users=1)  # one user, two days
    h.tick(at(20, 0.5))
    opened = h.of("onboarding_stall", "opened")
    assert len(opened) == 1
    alert = opened[0]
    assert alert.severity == "high", "both adoption and activity are behind"
    assert alert.account.stage == "onboarding" and alert.account.tenure_days == 14
    assert alert.ts == at(15, 0), "judged from min_tenure_days (14) on, not before"
    assert "Day 14 of onboarding: 1 of 20 seats active" in alert.explanation


def test_onboarding_on_track_gives_no_alert_and_graduation_resolves_an_open_one():
    good = Harness()
    good.subscribe(started_days_ago=None, day=0, seats=10)
    good.daily_logins(range(0, 60), 8, users=8)
    good.tick(at(60, 0.5))
    assert good.of("onboarding_stall") == []

    stalled = Harness()
    stalled.subscribe(started_days_ago=None, day=0, seats=10)
    stalled.daily_logins(range(0, 100), {d: 1 for d in range(100) if d % 6 == 0}, users=1)
    stalled.tick(at(100, 0.5))
    assert len(stalled.of("onboarding_stall", "opened")) == 1
    resolved = stalled.of("onboarding_stall", "resolved")
    assert len(resolved) == 1 and "left the 90-day onboarding" in resolved[0].resolution


def test_accounts_of_unknown_start_are_not_put_through_onboarding():
    h = Harness()
    h.daily_logins(range(0, 30), {3: 1}, users=1)
    h.tick(at(30, 0.5))
    assert h.of("onboarding_stall") == []


# --- billing -----------------------------------------------------------------------------


def test_failed_payment_alerts_on_the_event_itself_and_payment_resolves_it():
    h = Harness(defaults={"payment_failed": {"grace_days": 0}})
    h.subscribe(day=0)
    out = h.send("payment_failed", ts=at(3, 9), invoice_id="inv-1", amount=300)
    assert [a.kind for a in out] == ["opened"], "emitted in the same call as the event"
    assert out[0].trigger == "event" and out[0].ts == at(3, 9)
    assert out[0].severity == "medium" and out[0].evidence.facts[0].description == "payment failed"
    out = h.send("payment_failed", ts=at(7, 9), invoice_id="inv-1", amount=300)
    assert [(a.kind, a.severity, a.sequence) for a in out] == [("updated", "high", 1)]
    out = h.send("invoice_paid", ts=at(9, 9), invoice_id="inv-1", amount=300)
    assert [(a.kind, a.sequence) for a in out] == [("resolved", 2)]
    assert len({a.alert_id for a in h.of("payment_failed")}) == 1


def test_a_failed_payment_that_the_retry_pays_within_the_grace_opens_nothing():
    h = Harness()
    h.subscribe(day=0)
    assert h.send("payment_failed", ts=at(3, 9), invoice_id="inv-1", amount=300) == []
    h.send("invoice_paid", ts=at(5, 9), invoice_id="inv-1", amount=300)
    h.tick(at(12))
    assert h.of("payment_failed") == []
    assert h.engine.accounts["acct-1"].risk_of("payment_failed") == 0


def test_a_failed_payment_still_unpaid_after_the_grace_opens_at_that_day_s_close():
    h = Harness()
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(3, 9), invoice_id="inv-1", amount=300)
    assert h.engine.accounts["acct-1"].risk_of("payment_failed") == 60, "health sees it at once"
    h.tick(at(7, 0.5))
    (opened,) = h.of("payment_failed", "opened")
    assert opened.ts == at(7, 0) and opened.trigger == "day_close"  # 3 days after 09:00 on day 3
    assert opened.severity == "medium"


def test_a_second_failure_alerts_at_once_without_waiting_for_the_grace():
    h = Harness()
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(3, 9), invoice_id="inv-1", amount=300)
    out = h.send("payment_failed", ts=at(4, 9), invoice_id="inv-1", amount=300)
    assert only(out, "payment_failed") == [("opened", "high")]


def test_failed_payment_arriving_after_a_later_payment_opens_nothing():
    h = Harness(stream={"allowed_lateness_seconds": 3600})
    h.subscribe(day=0)
    h.send(
        "invoice_paid",
        ts=at(
            3,
            9,
        ),
        invoice_id="inv-1",
    )
    h.send("payment_failed", ts=at(3, 8.5), invoice_id="inv-1")  # 30 minutes late
    assert h.of("payment_failed") == []


def test_overdue_invoice_escalates_with_lateness_and_resolves_when_paid():
    h = Harness()
    h.subscribe(day=0)
    out = h.send("invoice_overdue", ts=at(5), days_late=3)
    assert only(out, "invoice_overdue") == [], "under the 7-day line"
    out = h.send("invoice_overdue", ts=at(9), days_late=10, invoice_id="a")
    assert only(out, "invoice_overdue") == [("opened", "medium")]
    out = h.send("invoice_overdue", ts=at(30), days_late=31, invoice_id="a")
    assert only(out, "invoice_overdue") == [("updated", "high")]
    out = h.send("invoice_paid", ts=at(31), invoice_id="a")
    assert only(out, "invoice_overdue") == [("resolved", "high")]


def test_repeatedly_late_invoices_are_high_even_when_each_is_mild():
    h = Harness()
    h.subscribe(day=0)
    h.send("invoice_overdue", ts=at(5), days_late=8, invoice_id="a")
    h.send("invoice_paid", ts=at(6), invoice_id="a")
    out = h.send("invoice_overdue", ts=at(40), days_late=8, invoice_id="b")
    assert only(out, "invoice_overdue") == [("opened", "high")]
    assert "2 invoices late in 90 days" in h.of("invoice_overdue", "opened")[-1].explanation


def test_downgrade_alerts_at_once_and_small_cuts_add_up():
    h = Harness()
    h.subscribe(day=0, mrr=1000)
    out = h.send(
        "plan_changed",
        ts=at(5),
        previous_plan="pro",
        new_plan="starter",
        previous_mrr=1000,
        new_mrr=600,
    )
    assert [(a.kind, a.severity) for a in out] == [("opened", "high")]
    assert out[0].value == 0.4 and out[0].account.plan == "starter" and out[0].account.mrr == 600

    h2 = Harness()
    h2.subscribe(day=0, mrr=1000, seats=20)
    assert h2.send("seats_changed", ts=at(5), previous_seats=20, new_seats=19) == []
    out = h2.send("seats_changed", ts=at(10), previous_seats=19, new_seats=17)
    assert [(a.kind, a.severity) for a in out] == [("opened", "medium")]
    assert out[0].value == 0.15, "measured from the MRR before the first cut"


def test_downgrade_resolves_after_a_quiet_month():
    h = Harness()
    h.subscribe(day=0, mrr=1000)
    h.send(
        "plan_changed",
        ts=at(5),
        previous_plan="pro",
        new_plan="starter",
        previous_mrr=1000,
        new_mrr=600,
    )
    h.tick(at(34, 0.5))
    assert h.of("downgrade", "resolved") == []
    h.tick(at(36, 0.5))
    resolved = h.of("downgrade", "resolved")
    assert len(resolved) == 1 and "no further contraction for 30 days" in resolved[0].resolution


# --- voice of the customer -----------------------------------------------------------------


def test_support_silence_after_a_history_of_tickets():
    h = Harness()
    h.subscribe(day=0)
    for day in range(0, 130):
        h.daily_logins(range(day, day + 1), 5)
        if day < 80 and day % 5 == 0:  # a ticket every five days, then nothing
            h.send("support_ticket", ts=at(day, 23))
    h.tick(at(130, 0.5))
    opened = h.of("support_silence", "opened")
    assert len(opened) == 1
    assert opened[0].value == 0 and opened[0].baseline >= 5
    day_opened = to_ms(opened[0].ts) // DAY_MS - to_ms(at(0, 0)) // DAY_MS
    assert 75 + 42 <= day_opened <= 75 + 44, "fires when the 42-day window holds no ticket"


def test_support_silence_needs_a_ticket_habit_to_break():
    h = Harness()
    h.subscribe(day=0)
    h.daily_logins(range(0, 10), 5)
    h.send("support_ticket", ts=at(10, 23))
    h.daily_logins(range(11, 130), 5)
    h.tick(at(130, 0.5))
    assert h.of("support_silence") == []


def test_nps_detractor_and_the_fall_from_promoter():
    h = Harness()
    h.subscribe(day=0)
    assert h.send("nps_response", ts=at(1), score=9, user_id="u") == []
    out = h.send("nps_response", ts=at(50), score=5, user_id="u")
    assert only(out, "nps_detractor") == [("opened", "high")]
    assert "down from promoter answer 9" in h.of("nps_detractor", "opened")[0].explanation
    out = h.send("nps_response", ts=at(60), score=8, user_id="u")
    assert only(out, "nps_detractor") == [("resolved", "high")]


def test_a_mild_detractor_answer_lowers_sentiment_without_an_alert_unless_asked():
    h = Harness()
    h.subscribe(day=0)
    assert only(h.send("nps_response", ts=at(1), score=5, user_id="u"), "nps_detractor") == []
    assert h.engine.accounts["acct-1"].risk_of("nps_detractor") == 60
    out = h.send("nps_response", ts=at(20), score=2, user_id="u")
    assert only(out, "nps_detractor") == [("opened", "high")]
    loud = Harness(defaults={"nps_detractor": {"alert_mild": True}})
    loud.subscribe(day=0)
    out = loud.send("nps_response", ts=at(1), score=5, user_id="u")
    assert only(out, "nps_detractor") == [("opened", "medium")]


def test_nps_detractor_expires_without_a_newer_answer():
    h = Harness(defaults={"nps_detractor": {"alert_mild": True}})
    h.subscribe(day=0)
    out = h.send("nps_response", ts=at(1), score=6, user_id="u")
    assert [(a.kind, a.severity) for a in out] == [("opened", "medium")]
    h.tick(at(122, 0.5))
    resolved = h.of("nps_detractor", "resolved")
    assert len(resolved) == 1 and "no newer answer for 120 days" in resolved[0].resolution
