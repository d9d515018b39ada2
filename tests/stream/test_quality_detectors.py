"""Product-quality signals on hand-built histories: support surge, bug exposure, slow support.

Each is shown opening, escalating and resolving, and staying quiet on the noise its guards
are there for; support silence and the surge are shown never to be open together.
"""

from __future__ import annotations

import random

from stream.core.timeutil import DAY_MS, to_ms
from tests.helpers import Harness, at

SILENCE, SURGE = "support_silence", "support_surge"


def only(alerts, signal):
    return [(a.kind, a.severity) for a in alerts if a.signal == signal]


def day_of(alert) -> int:
    return to_ms(alert.ts) // DAY_MS - to_ms(at(0, 0)) // DAY_MS


def _ticket(h: Harness, day: float, hour: float = 12, account: str = "acct-1", **fields):
    return h.send("support_ticket", account, at(day, hour), **fields)


def _steady(h: Harness, days: range, every: int = 4, account: str = "acct-1") -> None:
    for day in days:
        if day % every == 0:
            _ticket(h, day, account=account)


# --- support surge -----------------------------------------------------------------------


def test_support_surge_opens_escalates_and_resolves():
    h = Harness()
    h.subscribe(day=0)
    _steady(h, range(0, 71))  # a ticket every four days: 3.5 per 14 days
    for k in range(10):
        _ticket(h, 71, 8 + k * 0.5)
    h.tick(at(72, 0.5))
    opened = h.of(SURGE, "opened")
    assert [(a.severity, day_of(a)) for a in opened] == [("medium", 72)]
    assert opened[0].value == 13 and opened[0].baseline == 3.5
    assert "13 support tickets in the last 14 days" in opened[0].explanation
    for k in range(6):
        _ticket(h, 72, 8 + k)
    h.tick(at(73, 0.5))
    assert only(h.alerts, SURGE) == [("opened", "medium"), ("updated", "high")]
    _steady(h, range(73, 120))
    h.tick(at(120, 0.5))
    resolved = h.of(SURGE, "resolved")
    assert len(resolved) == 1 and 73 < day_of(resolved[0]) <= 88
    assert h.of(SILENCE) == []


def test_urgent_tickets_alone_make_a_surge():
    h = Harness()
    h.subscribe(day=0)
    _steady(h, range(0, 70), every=1)  # a busy help desk: 14 ordinary tickets per 14 days
    for k in range(10):  # ten urgent ones over four days: not three times the volume
        _ticket(h, 70 + k // 3, 9 + k % 3, priority="urgent")
    h.tick(at(75, 0.5))
    (opened,) = h.of(SURGE, "opened")
    assert opened.severity == "high" and "(10 high or urgent)" in opened.explanation
    assert opened.value / opened.baseline < 3, "the urgent rule fired, not the volume rule"


def test_surge_stays_quiet_on_noise_small_accounts_and_young_ones():
    # A busy account whose count wobbles: double its usual week is no surge.
    busy = Harness()
    busy.subscribe(day=0)
    _steady(busy, range(0, 100), every=1)
    for k in range(8):
        _ticket(busy, 90 + k, 15)
    busy.tick(at(101, 0.5))
    assert busy.of(SURGE) == []
    # An account that hardly ever writes: seven tickets in a day is under the volume floor.
    small = Harness()
    small.subscribe(day=0)
    for k in range(7):
        _ticket(small, 60, 8 + k)
    small.tick(at(70, 0.5))
    assert small.of(SURGE) == []
    # No baseline yet: a new account's first busy weeks are not a surge.
    young = Harness()
    young.subscribe(day=0, started_days_ago=None)
    for k in range(20):
        _ticket(young, 2 + k % 5, 9 + k // 5)
    young.tick(at(12, 0.5))
    assert young.of(SURGE) == []
    assert young.engine.accounts["acct-1"].risk_of(SURGE) == 0


def test_silence_then_a_surge_closes_the_silence_before_the_surge_opens():
    h = Harness()
    h.subscribe(day=0)
    for day in range(0, 80, 3):
        _ticket(h, day, 23)
    h.tick(at(125, 0.5))
    assert len(h.of(SILENCE, "opened")) == 1 and h.of(SILENCE, "resolved") == []
    for k in range(15):
        _ticket(h, 125, 8 + k * 0.5)
    h.tick(at(126, 0.5))
    done = [(a.signal, a.kind) for a in h.alerts if a.signal in (SILENCE, SURGE)]
    assert done[-2:] == [(SILENCE, "resolved"), (SURGE, "opened")]
    assert h.of(SILENCE, "resolved")[0].ts == h.of(SURGE, "opened")[0].ts


def test_a_held_silence_keeps_the_surge_from_opening_and_the_reverse():
    # Silence is held open (a few tickets came back, under half the old rate) while the
    # surge's own rule would fire against a baseline that the silence emptied.
    h = Harness(defaults={"support_silence": {"min_baseline_tickets": 40}})
    h.subscribe(day=0)
    for day in range(0, 75):
        for k in range(2):
            _ticket(h, day, 9 + k)
    h.tick(at(118, 0.5))
    assert len(h.of(SILENCE, "opened")) == 1
    for k in range(12):
        _ticket(h, 118 + k % 2, 8 + k // 2)
    h.tick(at(121, 0.5))
    acct = h.engine.accounts["acct-1"]
    assert acct.is_open(SILENCE) and not acct.is_open(SURGE)
    assert h.of(SURGE) == []


def test_support_silence_and_surge_are_never_open_together():
    """Random ticket histories (bursts, long silences, steady spells): after every day close
    and every event, at most one of the two is open."""
    rng = random.Random(16)
    seen = {SILENCE: 0, SURGE: 0}
    for trial in range(12):
        h = Harness()
        account = f"acct-{trial}"
        h.subscribe(account, day=0)
        day = 0
        while day < 220:
            mode = rng.choice(("steady", "burst", "quiet", "quiet"))
            length = rng.randrange(5, 50)
            for d in range(day, min(day + length, 220)):
                count = {"steady": rng.random() < 0.4, "burst": rng.randrange(0, 6), "quiet": 0}
                for k in range(int(count[mode])):
                    _ticket(h, d, 9 + k, account=account)
                h.tick(at(d + 1, 0.5))
                acct = h.engine.accounts[account]
                assert not (acct.is_open(SILENCE) and acct.is_open(SURGE)), (trial, d)
                for signal in seen:
                    seen[signal] += acct.is_open(signal)
            day += length
    assert seen[SILENCE] > 0 and seen[SURGE] > 0, (
        "both must actually occur for this to prove anything"
    )


# --- bug exposure ------------------------------------------------------------------------


def test_bug_exposure_opens_escalates_and_resolves_when_the_issue_is_fixed():
    h = Harness()
    h.subscribe(day=0)
    bug = {"category": "bug", "priority": "high"}
    assert only(_ticket(h, 1, ticket_id="T-1", linked_issue="ENG-7", **bug), "bug_exposure") == []
    _ticket(h, 2, ticket_id="T-2", **bug)  # linked later, by the help desk
    out = h.send("issue_linked", ts=at(3), ticket_id="T-2", linked_issue="ENG-7")
    assert only(out, "bug_exposure") == [("opened", "medium")]
    opened = h.of("bug_exposure", "opened")[0]
    assert "T-1 on ENG-7" in opened.explanation and "T-2 on ENG-7" in opened.explanation
    assert opened.value == 2
    h.tick(at(32, 0.5))  # the oldest has waited more than 30 days
    assert only(h.alerts, "bug_exposure")[-1] == ("updated", "high")
    out = h.send("issue_resolved", ts=at(33), linked_issue="ENG-7")
    assert only(out, "bug_exposure") == [("resolved", "high")]
    assert "ENG-7" in h.of("bug_exposure", "resolved")[0].resolution


def test_one_bug_alerts_once_it_has_been_open_too_long_and_solving_it_resolves():
    h = Harness()
    h.subscribe(day=0)
    _ticket(h, 1, ticket_id="T-9", category="bug", linked_issue="ENG-3")
    h.tick(at(14, 0.5))
    assert h.of("bug_exposure") == []
    h.tick(at(16, 0.5))
    assert only(h.alerts, "bug_exposure") == [("opened", "medium")]
    out = _ticket(h, 17, ticket_id="T-9", status="solved", resolution_s=16 * 86_400.0)
    assert only(out, "bug_exposure") == [("resolved", "medium")]


def test_bug_exposure_stays_quiet_on_quick_fixes_unlinked_bugs_and_foreign_issues():
    h = Harness()
    h.subscribe(day=0)
    _ticket(h, 1, ticket_id="T-1", category="bug", linked_issue="ENG-1")
    h.send("issue_resolved", ts=at(5), linked_issue="ENG-1")
    _ticket(h, 6, ticket_id="T-2", category="bug")  # a bug report nobody linked
    _ticket(h, 6, ticket_id="T-3", category="bug")
    assert h.send("issue_resolved", ts=at(7), linked_issue="ENG-404") == []
    h.tick(at(60, 0.5))
    assert h.of("bug_exposure") == []
    log = h.engine.accounts["acct-1"].ticket_log
    assert log.bugs == [] and log.fixed[0][1] == "ENG-1"


# --- slow support ------------------------------------------------------------------------


def _solved(h: Harness, day: float, ticket: str, hours: float, account: str = "acct-1"):
    _ticket(h, day - hours / 24, 1, account=account, ticket_id=ticket)
    return _ticket(
        h, day, 2, account=account, ticket_id=ticket, status="solved", resolution_s=hours * 3600
    )


def test_slow_support_opens_escalates_and_resolves():
    h = Harness()
    h.subscribe(day=0)
    _solved(h, 10, "T-1", 80)
    _solved(h, 12, "T-2", 90)
    out = _solved(h, 14, "T-3", 100)
    assert only(out, "slow_support") == [("opened", "medium")]
    opened = h.of("slow_support", "opened")[0]
    assert opened.value == 90 and "T-1 80 h" in opened.explanation
    assert "24-hour norm for pro accounts" in opened.explanation
    _solved(h, 20, "T-4", 200)
    _solved(h, 22, "T-5", 240)
    out = _solved(h, 24, "T-6", 260)  # median of the six: 150 hours, over 6x the norm
    assert only(out, "slow_support") == [("updated", "high")]
    for k in range(5):  # six kept: fast answers push the slow ones out
        out = _solved(h, 30 + k, f"T-{10 + k}", 4)
    assert h.of("slow_support", "resolved")


def test_slow_support_judges_by_the_segment_norm_and_needs_enough_tickets():
    fast_norm = Harness()
    fast_norm.subscribe(day=0)
    _solved(fast_norm, 10, "T-1", 80)
    _solved(fast_norm, 11, "T-2", 90)
    fast_norm.tick(at(40, 0.5))
    assert fast_norm.of("slow_support") == [], "two tickets are too few to judge"
    enterprise = Harness(segments={"enterprise": {"slow_support": {"norm_hours": 48}}})
    enterprise.subscribe(day=0, plan="enterprise")
    for k, hours in enumerate((80, 90, 100, 110)):
        _solved(enterprise, 10 + k, f"T-{k}", hours)
    assert enterprise.of("slow_support") == [], "under 3x the enterprise norm of 48 hours"


def test_the_registry_declares_silence_and_surge_exclusive_both_ways():
    from stream.core.signals import registry

    assert registry.DEFAULT.excluded_by == {SILENCE: (SURGE,), SURGE: (SILENCE,)}
