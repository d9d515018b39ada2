"""The simulator's scenarios give the churn they promise, in the shape they promise.

Detection is judged on logs from other generators with other churn mechanisms, so each scenario
here must hold its own contract: a realistic monthly churn rate; ``level`` churners that look
like everyone else in logins but use their segment's key features less, many of them leaving at
their first renewal; ``random`` churners indistinguishable from retained accounts; and the
``decline`` traps that recover and never cancel. The legacy log itself is pinned byte for byte
by tests/stream/test_golden.py.

Usage is compared per seat: accounts range from one seat to hundreds, so a plain mean over a
couple of hundred churners moves by 10-15% with the luck of which large accounts churned, which
is noise about account size, not about behaviour.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

import pytest

from schemas.events import decode_event
from stream.devtools.simulator import (
    KEY_FEATURES,
    SCENARIOS,
    TRAPS,
    Label,
    SimConfig,
    generate,
    serialize,
)

ACCOUNTS, DAYS, CHURN = 1500, 150, 0.03
SUBSCRIBED = tuple(s for s in SCENARIOS if s != "transactional")
"""Scenarios whose accounts subscribe and cancel; transactional buyers lapse instead (no
cancellation event: their labels are checked in tests/devtools/test_sim_stories.py)."""


@dataclass
class Run:
    """What the tests need from one generated log, gathered in a single pass over it."""

    cfg: SimConfig
    labels: dict[str, Label]
    logins: Counter = field(default_factory=Counter)
    daily: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # logins
    features: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    started: dict[str, int] = field(default_factory=dict)  # subscription_started day
    cancels: dict[str, tuple[int, dict]] = field(default_factory=dict)
    payments: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))

    def end(self, label: Label) -> int:
        """The day an account stops being observable: its cancellation or the log's end."""
        return self.cancels[label.account_id][0] if label.account_id in self.cancels else DAYS

    def churners(self) -> list[Label]:
        return [lb for lb in self.labels.values() if lb.outcome == "churned"]

    def retained(self) -> list[Label]:
        return [lb for lb in self.labels.values() if lb.outcome == "retained"]


def _simulate(cfg: SimConfig) -> Run:
    labels: list[Label] = []
    events = generate(cfg, labels)
    start = cfg.start.date()
    day_of: dict[str, int] = {}
    run = Run(cfg, {})
    for event in events:
        text = event["ts"][:10]
        day = day_of.get(text)
        if day is None:
            day = day_of[text] = (date.fromisoformat(text) - start).days
        acct, kind = event["account_id"], event["type"]
        if kind == "login":
            run.logins[acct] += 1
            run.daily[acct][day] += 1
        elif kind == "feature_used":
            run.features[acct][event["feature"]] += 1
        elif kind == "subscription_started":
            run.started[acct] = day
        elif kind == "subscription_cancelled":
            run.cancels[acct] = (day, event)
        elif kind in ("payment_failed", "invoice_paid"):
            run.payments[acct].append((day, kind))
    run.labels = {lb.account_id: lb for lb in labels}
    return run


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    return {
        scenario: _simulate(
            SimConfig(accounts=ACCOUNTS, days=DAYS, seed=21, scenario=scenario, monthly_churn=CHURN)
        )
        for scenario in SCENARIOS
    }


def _monthly_churn(run: Run) -> float:
    """Cancellations within each whole month over the accounts present at its start, pooled."""
    cancels = present = 0
    for month in range(DAYS // 30):
        start = 30 * month
        for label in run.labels.values():
            if label.joined_day <= start and run.end(label) >= start:
                present += 1
                cancels += label.account_id in run.cancels and run.end(label) < start + 30
    return cancels / present


def _mean(values: list[float]) -> float:
    assert values, "nothing to average"
    return sum(values) / len(values)


def _logins_per_active_day_per_seat(run: Run, group: list[Label]) -> float:
    return _mean(
        [
            run.logins[lb.account_id] / len(run.daily[lb.account_id]) / lb.seats
            for lb in group
            if run.daily[lb.account_id]
        ]
    )


def _logins_per_week_per_seat(run: Run, group: list[Label]) -> float:
    return _mean(
        [
            run.logins[lb.account_id] * 7 / max(1, run.end(lb) - lb.joined_day) / lb.seats
            for lb in group
        ]
    )


def _per_login(run: Run, group: list[Label], features: tuple[str, ...]) -> float:
    return _mean(
        [
            sum(run.features[lb.account_id][f] for f in features) / run.logins[lb.account_id]
            for lb in group
            if run.logins[lb.account_id]
        ]
    )


# --- configuration ---------------------------------------------------------------------------


def test_the_defaults_are_the_legacy_decline_log():
    cfg = SimConfig(accounts=10, days=10, seed=1)
    assert cfg.scenario == "decline"
    assert cfg.monthly_churn is None
    assert cfg.legacy
    assert not SimConfig(monthly_churn=0.03).legacy
    assert not SimConfig(scenario="random").legacy


@pytest.mark.parametrize("bad", [-0.01, 0.51, 1.0])
def test_monthly_churn_must_be_a_plausible_rate(bad):
    with pytest.raises(ValueError, match="monthly_churn"):
        SimConfig(monthly_churn=bad)


def test_an_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="scenario"):
        SimConfig(scenario="seasonal")


def test_legacy_labels_say_their_mechanism_is_decline():
    labels: list[Label] = []
    for _ in generate(SimConfig(accounts=30, days=20, seed=3), labels):
        pass
    assert {lb.mechanism for lb in labels} == {"decline"}


# --- every scenario --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SUBSCRIBED)
def test_monthly_logo_churn_is_realistic(runs, scenario):
    churn = _monthly_churn(runs[scenario])
    assert 0.015 <= churn <= 0.05, f"{scenario}: {churn:.4f} a month"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_account_carries_a_segment_and_seats(runs, scenario):
    labels = runs[scenario].labels.values()
    assert {lb.segment for lb in labels} == {"starter", "pro", "enterprise"}
    assert all(lb.seats >= 1 for lb in labels)
    by_segment = Counter(lb.segment for lb in labels)
    assert by_segment["enterprise"] >= 0.05 * ACCOUNTS, "too few to learn a segment from"


@pytest.mark.parametrize("scenario", SUBSCRIBED)
def test_labels_agree_with_the_log(runs, scenario):
    run = runs[scenario]
    assert set(run.cancels) == {lb.account_id for lb in run.churners()}
    for label in run.churners():
        _, event = run.cancels[label.account_id]
        assert label.cancel_ts == event["ts"]
        assert event["voluntary"] is (label.churn_type == "voluntary")
        assert event["reason"]
        assert label.mechanism in ("decline", "level", "random", "quality")


@pytest.mark.parametrize("scenario", SUBSCRIBED)
def test_a_realistic_share_of_accounts_signs_up_during_the_log(runs, scenario):
    run = runs[scenario]
    assert 0.25 <= len(run.started) / ACCOUNTS <= 0.4


@pytest.mark.parametrize("scenario", SUBSCRIBED)
def test_every_event_is_valid(scenario):
    cfg = SimConfig(accounts=60, days=70, seed=5, scenario=scenario, monthly_churn=0.1)
    kinds = Counter(decode_event(line).type for line in serialize(generate(cfg)))
    assert kinds["login"] and kinds["feature_used"] and kinds["subscription_renewed"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_churn_at_a_zero_rate(scenario):
    labels: list[Label] = []
    cfg = SimConfig(accounts=200, days=120, seed=9, scenario=scenario, monthly_churn=0.0)
    for _ in generate(cfg, labels):
        pass
    assert [lb for lb in labels if lb.outcome == "churned"] == []


# --- level -----------------------------------------------------------------------------------


def test_level_churners_log_in_like_everyone_else(runs):
    run = runs["level"]
    churned = _logins_per_active_day_per_seat(run, run.churners())
    retained = _logins_per_active_day_per_seat(run, run.retained())
    assert churned == pytest.approx(retained, rel=0.15)


def test_level_churners_do_not_decline_before_they_leave(runs):
    """Their logins over the four weeks before cancelling match their earlier weeks."""
    run = runs["level"]
    before = last = 0.0
    for label in run.churners():
        cancel = run.end(label)
        if cancel - label.joined_day < 56:
            continue
        daily = run.daily[label.account_id]
        # Per seat and day, so every account weighs alike whatever its size.
        weight = 1 / label.seats
        last += weight * sum(n for d, n in daily.items() if d >= cancel - 28) / 28
        before += (
            weight
            * sum(n for d, n in daily.items() if d < cancel - 28)
            / (cancel - 28 - label.joined_day)
        )
    assert last == pytest.approx(before, rel=0.1)


@pytest.mark.parametrize("segment", sorted(KEY_FEATURES))
def test_level_churners_use_their_segments_key_features_less(runs, segment):
    run = runs["level"]
    churned = [lb for lb in run.churners() if lb.segment == segment]
    retained = [lb for lb in run.retained() if lb.segment == segment]
    assert len(churned) >= 8
    keys = KEY_FEATURES[segment]
    assert _per_login(run, churned, keys) < 0.75 * _per_login(run, retained, keys)
    # The features that do not matter for this segment are used alike.
    others = tuple(
        f for f in ("alerts", *(k for ks in KEY_FEATURES.values() for k in ks)) if f not in keys
    )
    assert _per_login(run, churned, others) == pytest.approx(
        _per_login(run, retained, others), rel=0.25
    )


def test_many_level_churners_leave_at_their_first_renewal(runs):
    run = runs["level"]
    churned = run.churners()
    first = [
        lb
        for lb in churned
        if lb.account_id in run.started
        and run.cancels[lb.account_id][0] - run.started[lb.account_id] == 30
    ]
    assert len(first) >= 0.3 * len(churned)


def test_level_churners_cancel_on_a_renewal_day_voluntarily(runs):
    run = runs["level"]
    for label in run.churners():
        day, event = run.cancels[label.account_id]
        assert label.archetype == "feature_level"
        assert event["voluntary"] is True
        assert event["ts"].endswith("T02:00:00.000Z")
        if label.account_id in run.started:
            assert (day - run.started[label.account_id]) % 30 == 0


# --- random ----------------------------------------------------------------------------------


def test_random_churners_look_like_retained_accounts(runs):
    run = runs["random"]
    churned, retained = run.churners(), run.retained()
    assert _logins_per_week_per_seat(run, churned) == pytest.approx(
        _logins_per_week_per_seat(run, retained), rel=0.15
    )
    for segment, keys in KEY_FEATURES.items():
        c = [lb for lb in churned if lb.segment == segment]
        r = [lb for lb in retained if lb.segment == segment]
        if len(c) >= 20:
            assert _per_login(run, c, keys) == pytest.approx(_per_login(run, r, keys), rel=0.25)
    assert {lb.archetype for lb in churned} == {"healthy"}


# --- decline ---------------------------------------------------------------------------------


def test_decline_traps_recover_and_stay(runs):
    run = runs["decline"]
    traps = [lb for lb in run.labels.values() if lb.archetype in TRAPS]
    assert Counter(lb.archetype for lb in traps).keys() == TRAPS
    assert all(lb.outcome == "retained" for lb in traps)
    retried = [lb for lb in traps if lb.archetype == "retried_payment"]
    assert len(retried) >= 30
    for label in retried:
        payments = run.payments[label.account_id]
        failed = [day for day, kind in payments if kind == "payment_failed"]
        assert len(failed) == 1
        paid_after = [day - failed[0] for day, kind in payments if kind == "invoice_paid"]
        assert any(1 <= lag <= 3 for lag in paid_after)


def test_recovering_decliners_dip_then_return(runs):
    """Pooled over the trap accounts, per seat: the days deep in the dip against the weeks
    before it and the weeks after it."""
    run = runs["decline"]
    recovering = [lb for lb in run.labels.values() if lb.archetype == "recovering_decliner"]
    assert len(recovering) >= 30

    def rate(label: Label, first: int, last: int) -> float:
        daily = run.daily[label.account_id]
        return sum(daily[d] for d in range(first, last)) / (last - first) / label.seats

    before = dip = after = 0.0
    later = [lb for lb in recovering if lb.decline_day is not None and lb.decline_day + 49 <= DAYS]
    assert len(later) >= 20
    for label in later:
        start = label.decline_day
        assert start is not None
        before += rate(label, start - 14, start)
        dip += rate(label, start + 3, start + 10)
        after += rate(label, start + 35, start + 49)  # a dip lasts four weeks at most
    assert dip < 0.7 * before
    assert after == pytest.approx(before, rel=0.2)


def test_decline_churners_decline_first(runs):
    run = runs["decline"]
    churned = run.churners()
    by_kind = Counter(lb.archetype for lb in churned)
    assert by_kind["gradual_decliner"] >= 20 and by_kind["sudden_stop"] >= 5
    assert any(lb.churn_type == "involuntary" for lb in churned)
    for label in churned:
        if label.archetype in ("gradual_decliner", "sudden_stop"):
            assert label.decline_day is not None and label.decline_day < run.end(label)


# --- mixed -----------------------------------------------------------------------------------


def test_mixed_draws_each_accounts_mechanism(runs):
    run = runs["mixed"]
    share = Counter(lb.mechanism for lb in run.labels.values())
    assert share["decline"] == pytest.approx(0.4 * ACCOUNTS, rel=0.12)
    assert share["level"] == pytest.approx(0.4 * ACCOUNTS, rel=0.12)
    assert share["random"] == pytest.approx(0.2 * ACCOUNTS, rel=0.15)
    assert {lb.mechanism for lb in run.churners()} == {"decline", "level", "random"}


# --- determinism -----------------------------------------------------------------------------


def _digest(cfg: SimConfig) -> str:
    labels: list[Label] = []
    digest = hashlib.sha256()
    for line in serialize(generate(cfg, labels)):
        digest.update(line)
    for label in labels:
        digest.update(repr(label.as_dict()).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_same_seed_gives_the_same_log_and_another_seed_another(scenario):
    cfg = SimConfig(accounts=120, days=70, seed=4, scenario=scenario, monthly_churn=0.05)
    assert _digest(cfg) == _digest(cfg)
    other = SimConfig(accounts=120, days=70, seed=5, scenario=scenario, monthly_churn=0.05)
    assert _digest(other) != _digest(cfg)
