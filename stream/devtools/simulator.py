"""A seeded generator of realistic usage and billing logs with known outcomes.

Accounts follow archetypes drawn from the domain notes: healthy accounts with a weekly rhythm,
holidays and noise; gradual decliners that cancel; accounts weak from their first weeks that
leave at a renewal without ever declining; sudden stops (the champion left); onboarding stalls;
failed payments (involuntary churn), late payers, downgraders and NPS detractors. Every account's
true outcome goes to the labels, so detectors and calibration can be scored against the truth.

One churn mechanism is too easy to overfit, so ``SimConfig.scenario`` picks how churn arises:

* ``decline``: the archetypes above, where churners' usage visibly falls before they leave. With
  ``monthly_churn`` set, their weights are scaled to that rate and two retained traps join them
  (a decline that recovers, a failed payment retried and paid), which a detector must not flag.
* ``level``: churn is decided at each monthly renewal by the *level* of a few key features for
  the account's segment, never by a trend: churners log in like everyone else, and new accounts
  often leave at their first renewal, so a detector must judge them within weeks.
* ``random``: churn unrelated to behaviour, the floor no detector can beat.
* ``mixed``: each account gets one of the three mechanisms.
* ``quality`` and ``transactional``: the stories of the product-quality and purchase signals
  (ticket surges, bugs left unfixed, slow support; buyers without a subscription whose
  orders fade), in :mod:`stream.devtools.sim_stories`. Separate scenarios, so the logs of the
  others do not change.

The defaults (``scenario="decline"``, ``monthly_churn=None``) reproduce the original log byte for
byte, since golden tests and benchmarks are pinned to it.

Generation is pure: ``generate(config)`` yields event dicts in event-time order, and the same
seed always gives the same log (``random.Random(seed)`` per account, nothing global).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from stream.core.timeutil import DAY_MS, day_date, to_ms
from stream.devtools.names import company_name, owner_for
from stream.devtools.sim_stories import BuyerStory, QualityStory, pick

ESTABLISHED_MIX: dict[str, float] = {
    "healthy": 0.58,
    "seasonal_dip": 0.06,
    "gradual_decliner": 0.10,
    "sudden_stop": 0.04,
    "payment_trouble": 0.05,
    "late_payer": 0.04,
    "downgrader": 0.06,
    "detractor": 0.07,
}
NEW_MIX: dict[str, float] = {
    "new_healthy": 0.60,
    "low_from_start": 0.25,
    "onboarding_stall": 0.15,
}
DECLINING = frozenset({"gradual_decliner", "sudden_stop"})
"""Churners of the clearly-declining kind: usage visibly falls before they cancel."""

SCENARIOS = ("decline", "level", "random", "mixed", "quality", "transactional")
MECHANISMS = ("decline", "level", "random")
DEFAULT_MONTHLY_CHURN = 0.03
"""The rate ``level``, ``random`` and ``mixed`` use when ``monthly_churn`` is not given."""

TRAPS = frozenset({"recovering_decliner", "retried_payment"})
"""Retained archetypes that look alarming for a while: alerting on them is a false positive."""

# With monthly_churn set, the decline mechanism splits the legacy mix by outcome: these are the
# legacy weights of the churning stories (payment trouble, downgraders and detractors churn only
# part of the time, so only that part is here) ...
_DECLINE_CHURN_MIX: dict[str, float] = {
    "gradual_decliner": 0.10,
    "sudden_stop": 0.04,
    "payment_trouble": 0.025,
    "downgrader": 0.024,
    "detractor": 0.028,
}
# ... and these the retained ones, with the two traps added.
_DECLINE_RETAINED_MIX: dict[str, float] = {
    "healthy": 0.58,
    "seasonal_dip": 0.06,
    "late_payer": 0.04,
    "downgrader": 0.036,
    "detractor": 0.042,
    "payment_trouble": 0.025,
    "recovering_decliner": 0.06,
    "retried_payment": 0.05,
}
_DECLINE_NEW_CHURN_MIX: dict[str, float] = {"low_from_start": 0.25, "onboarding_stall": 0.15}
_DECLINE_NEW_RETAINED_MIX: dict[str, float] = {"new_healthy": 0.9, "retried_payment": 0.1}
_NEW_EARLY_HAZARD = 1.5
"""A new account's monthly churn hazard over its first two months, relative to the target."""

_MIXED_MECHANISMS: dict[str, float] = {"decline": 0.4, "level": 0.4, "random": 0.2}

_PLANS = (("starter", 5, 15.0), ("pro", 50, 30.0), ("enterprise", 10**9, 50.0))
_PRICES = {name: price for name, _, price in _PLANS}
_LOG18 = math.log(18)  # median session minutes
_FEATURES = ("reports", "dashboards", "export", "integrations", "alerts", "api", "sharing")

# The non-legacy scenarios draw the segment first, so every segment has enough accounts to learn
# from (the legacy seat distribution puts only ~0.5% of accounts in enterprise); seats stay in
# the plan's legacy range, so the plan still follows from the seat count.
_SEGMENT_MIX: dict[str, float] = {"starter": 0.55, "pro": 0.35, "enterprise": 0.10}
_SEATS = {
    "starter": (2.5, 0.6, 1, 5),
    "pro": (8.0, 0.5, 6, 50),
    "enterprise": (60.0, 0.3, 51, 250),
}
"""Per segment: lognormal median and sigma of the seat count, then its clip range."""

_FEATURE_PER_LOGIN: dict[str, float] = {
    "reports": 0.11,
    "dashboards": 0.11,
    "export": 0.06,
    "integrations": 0.05,
    "alerts": 0.06,
    "api": 0.05,
    "sharing": 0.06,
}
"""Mean feature_used events per login across accounts: 0.5 in all, as in the legacy log."""
_FEATURE_SIGMA = 0.8
"""Spread of an account's latent feature rates (log scale), flat over time."""

KEY_FEATURES: dict[str, tuple[str, ...]] = {
    "starter": ("reports", "export"),
    "pro": ("dashboards", "integrations"),
    "enterprise": ("api", "sharing"),
}
"""The features whose level drives churn in the ``level`` mechanism; the others do not matter."""
_KEY_COEF = -1.2
"""Log-odds of cancelling per standard deviation of a key feature's log rate."""
_FIRST_RENEWAL_LOGODDS = math.log(15.0)
"""Extra log-odds at a new account's first renewal: about 20% of new monthly accounts leave there,
against ~2% a month later on (at 3% overall). With ~30% new accounts in a five-month log, a 2-3x
lift would put only ~15-20% of churners at a first renewal; self-serve cohorts do lose far more
in month one, and a detector must be tested on accounts only weeks old."""
_ANNUAL_LOGODDS = math.log(12.0)
"""An annual renewal carries about a year of monthly odds; kept on the logit scale so the key
features weigh as much at an annual renewal as at a monthly one."""

_LEVEL_REASONS = ("not enough value", "missing features", "switched to a competitor")
_RANDOM_REASONS = ("budget cuts", "company shut down", "acquired", "project ended")


@dataclass(frozen=True)
class SimConfig:
    accounts: int = 1000
    days: int = 150
    seed: int = 7
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    new_fraction: float = 0.3
    """Share of accounts that sign up during the log (the rest exist before it starts)."""
    scenario: str = "decline"
    """How churn arises: one of :data:`SCENARIOS` (see the module docstring)."""
    monthly_churn: float | None = None
    """Expected share of the accounts present at a month's start that cancel within it. ``None``
    keeps the legacy archetype mix for ``decline`` and means 3% for the other scenarios."""

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("accounts must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0 <= self.new_fraction <= 1:
            raise ValueError("new_fraction must be between 0 and 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}")
        if self.monthly_churn is not None and not 0 <= self.monthly_churn <= 0.5:
            raise ValueError("monthly_churn must be between 0 and 0.5")

    @property
    def legacy(self) -> bool:
        """The original generator, kept byte-identical for the logs pinned by golden tests."""
        return self.scenario == "decline" and self.monthly_churn is None

    @property
    def churn_target(self) -> float:
        return DEFAULT_MONTHLY_CHURN if self.monthly_churn is None else self.monthly_churn


@dataclass
class Label:
    account_id: str
    archetype: str
    segment: str
    seats: int
    joined_day: int  # day index in the log the account appears (0 for established accounts)
    outcome: str = "retained"
    cancel_ts: str | None = None
    churn_type: str | None = None
    decline_day: int | None = None  # day its usage began to fall, for declining archetypes
    mechanism: str = "decline"  # how churn arises for this account: one of MECHANISMS

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Account:
    """The hidden truth behind one account's events."""

    id: str
    archetype: str
    rng: random.Random
    seats: int
    plan: str
    price: float
    period: str
    created_day: int  # may be negative: before the log starts
    joined_day: int
    users: list[str]
    propensity: list[float]  # per-user weekday login probability
    adopted: int  # how many of the users are actually using the product
    ticket_rate: float
    renew_phase: int
    nps_phase: int
    label: Label
    events: dict[int, list[tuple[int, dict]]] = field(default_factory=dict)
    decline: tuple[int, int] | None = None  # (start day, length)
    stop_day: int | None = None
    cancel_day: int | None = None
    dips: list[tuple[int, int, float]] = field(default_factory=list)
    silent_support_from: int | None = None
    nps_bad_from: int | None = None
    ramp_days: int = 0
    trouble_done: bool = False
    # Only the non-legacy scenarios set what follows; the legacy story leaves it untouched.
    scripted: bool = False  # the story is decided up front, outcome included
    features: list[float] | None = None  # latent log feature_used rate per login, by _FEATURES
    feature_cum: list[float] | None = None  # cumulative rates, to pick a feature per event
    feature_p0: float = 1.0  # P(no feature_used in a login): exp(-total rate)
    recovery: tuple[int, int, float] | None = None  # (start, end, depth) of a recovered dip
    trouble_day: int | None = None  # renewal whose payment fails
    trouble_recovers: bool = False
    retry_lag: int = 0  # days until a failed payment is retried and paid (retried_payment)
    downgrade_day: int | None = None
    cancel_at_renewal: bool = False  # cancels as the renewal falls due, before using it
    cancel_reason: str | None = None
    story: QualityStory | BuyerStory | None = None
    """The ``quality`` and ``transactional`` scenarios' story; None in every other scenario."""


def _plan_for(seats: int) -> tuple[str, float]:
    for name, max_seats, price in _PLANS:
        if seats <= max_seats:
            return name, price
    raise AssertionError("unreachable")


@cache
def _clock() -> tuple[str, ...]:
    """``HH:MM:SS`` for every second of a day: formatting timestamps dominates generation."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))


class _Writer:
    """Turns (account, day, ms, type, fields) into event dicts with unique, stable ids."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.serial = 0
        self._prefix: dict[int, str] = {}
        self._clock = _clock()

    def iso(self, ms: int) -> str:
        day, rest = divmod(ms, DAY_MS)
        prefix = self._prefix.get(day)
        if prefix is None:
            prefix = self._prefix[day] = day_date(day).isoformat() + "T"
        seconds, millis = divmod(rest, 1000)
        return f"{prefix}{self._clock[seconds]}.{millis:03d}Z"

    def usage(
        self, acct: _Account, log_day: int, ms: int, kind: str, user: str, key: str, value: object
    ) -> None:
        """``add`` for the hot path: one user's event with at most one field (``key`` "" for
        none), giving the same dict, key order included."""
        self.serial += 1
        day, rest = divmod(ms, DAY_MS)
        prefix = self._prefix.get(day)
        if prefix is None:
            prefix = self._prefix[day] = day_date(day).isoformat() + "T"
        seconds, millis = divmod(rest, 1000)
        event = {
            "event_id": f"ev-{self.serial:010d}",
            "account_id": acct.id,
            "ts": f"{prefix}{self._clock[seconds]}.{millis:03d}Z",
            "type": kind,
            "user_id": user,
        }
        if key:
            event[key] = value
        bucket = acct.events.get(log_day)
        if bucket is None:
            acct.events[log_day] = [(ms, event)]
        else:
            bucket.append((ms, event))

    def add(self, acct: _Account, log_day: int, ms: int, kind: str, **fields: object) -> None:
        # iso() inlined: this runs once per event and dominates the cost of generation.
        self.serial += 1
        day, rest = divmod(ms, DAY_MS)
        prefix = self._prefix.get(day)
        if prefix is None:
            prefix = self._prefix[day] = day_date(day).isoformat() + "T"
        seconds, millis = divmod(rest, 1000)
        if None in fields.values():
            fields = {k: v for k, v in fields.items() if v is not None}
        event = {
            "event_id": f"ev-{self.serial:010d}",
            "account_id": acct.id,
            "ts": f"{prefix}{self._clock[seconds]}.{millis:03d}Z",
            "type": kind,
            **fields,
        }
        bucket = acct.events.get(log_day)
        if bucket is None:
            acct.events[log_day] = [(ms, event)]
        else:
            bucket.append((ms, event))


def _new_account(i: int, cfg: SimConfig, rng: random.Random) -> _Account:
    new = rng.random() < cfg.new_fraction
    archetype = pick(rng, NEW_MIX if new else ESTABLISHED_MIX)
    seats = max(1, min(400, int(rng.lognormvariate(math.log(5), 0.9))))
    plan, price = _plan_for(seats)
    period = "annual" if plan == "enterprise" or rng.random() < 0.15 else "monthly"
    if new:
        joined = rng.randrange(0, max(1, cfg.days - 40))
        created = joined
    else:
        joined = 0
        created = -rng.randrange(120, 1000)
    users = [f"u{i:05d}-{k:03d}" for k in range(seats)]
    healthy_adoption = rng.uniform(0.55, 0.95)
    if archetype == "low_from_start":
        adoption = rng.uniform(0.12, 0.3)
        propensity = [rng.uniform(0.08, 0.25) for _ in users]
    elif archetype == "onboarding_stall":
        adoption = min(1.0, rng.choice((1, 1, 2)) / seats)
        propensity = [rng.uniform(0.3, 0.6) for _ in users]
    else:
        adoption = healthy_adoption
        propensity = [rng.uniform(0.4, 0.85) for _ in users]
    adopted = max(1, round(seats * adoption))
    acct_id = f"acct-{i:05d}"
    label = Label(acct_id, archetype, plan, seats, joined)
    return _Account(
        id=acct_id,
        archetype=archetype,
        rng=rng,
        seats=seats,
        plan=plan,
        price=price,
        period=period,
        created_day=created,
        joined_day=joined,
        users=users,
        propensity=propensity,
        adopted=adopted,
        ticket_rate=0.02 * seats**0.6,
        renew_phase=(created % 30),
        nps_phase=rng.randrange(0, 90),
        label=label,
        ramp_days=rng.randrange(14, 35) if archetype == "new_healthy" else 0,
    )


def _plan_story(a: _Account, cfg: SimConfig) -> None:
    """Decide when and how this account's story turns (decline, stop, cancellation...)."""
    rng, days = a.rng, cfg.days
    if rng.random() < 0.35:  # a holiday: a week or so of low activity, then back to normal
        start = rng.randrange(0, days)
        a.dips.append((start, start + rng.randrange(5, 10), rng.uniform(0.2, 0.5)))
    if a.archetype == "seasonal_dip":
        start = rng.randrange(50, max(51, days - 25))
        a.dips.append((start, start + rng.randrange(14, 22), rng.uniform(0.25, 0.45)))
    elif a.archetype == "gradual_decliner":
        start = rng.randrange(45, max(46, days - 60))
        length = rng.randrange(30, 60)
        a.decline = (start, length)
        a.silent_support_from = start + 10
        a.cancel_day = start + length + rng.randrange(0, 20)
        if rng.random() < 0.5:
            a.nps_bad_from = start + length // 2
        a.label.decline_day = start
    elif a.archetype == "sudden_stop":
        a.stop_day = rng.randrange(50, max(51, days - 45))
        a.cancel_day = a.stop_day + rng.randrange(14, 45)
        a.label.decline_day = a.stop_day
    elif a.archetype == "low_from_start":
        a.cancel_day = a.joined_day + (30 if rng.random() < 0.6 else 60)
    elif a.archetype == "onboarding_stall":
        a.cancel_day = a.joined_day + rng.randrange(30, 61)
    elif a.archetype == "detractor":
        a.nps_bad_from = rng.randrange(20, max(21, days - 70))
        if rng.random() < 0.4:
            a.decline = (a.nps_bad_from + 5, rng.randrange(40, 70))
            a.cancel_day = a.nps_bad_from + rng.randrange(45, 75)
    if a.cancel_day is not None and a.cancel_day >= days:
        a.cancel_day = None  # the story ends after the log does


# --- the non-legacy scenarios: every account's story, outcome included, is decided up front ---


def _renewal_days(a: _Account, days: int) -> range:
    """The days in the log on which this account's subscription falls due (not its first day)."""
    period = 30 if a.period == "monthly" else 365
    first = a.joined_day + ((a.created_day - a.joined_day) % period or period)
    return range(first, days, period)


def _scripted_account(i: int, cfg: SimConfig, rng: random.Random, mechanism: str) -> _Account:
    new = rng.random() < cfg.new_fraction
    plan = pick(rng, _SEGMENT_MIX)
    median, sigma, low, high = _SEATS[plan]
    seats = max(low, min(high, round(rng.lognormvariate(math.log(median), sigma))))
    # Unlike the legacy log (every enterprise contract annual), many enterprise accounts renew
    # monthly here, or the segment would have too few renewals in a log of months to learn from.
    period = "annual" if rng.random() < (0.4 if plan == "enterprise" else 0.15) else "monthly"
    if new:
        joined = rng.randrange(0, max(1, cfg.days - 40))
        created = joined
    else:
        joined = 0
        created = -rng.randrange(120, 1000)
    users = [f"u{i:05d}-{k:03d}" for k in range(seats)]
    # Large accounts buy seats ahead of use, so a smaller share of them is active.
    adoption = rng.uniform(0.25, 0.5) if plan == "enterprise" else rng.uniform(0.55, 0.95)
    propensity = [rng.uniform(0.4, 0.85) for _ in users]
    shift = _FEATURE_SIGMA**2 / 2  # so the mean rate across accounts is _FEATURE_PER_LOGIN's
    features = [
        math.log(_FEATURE_PER_LOGIN[name]) - shift + _FEATURE_SIGMA * rng.gauss(0.0, 1.0)
        for name in _FEATURES
    ]
    cum, total = [], 0.0
    for value in features:
        total += math.exp(value)
        cum.append(total)
    archetype = {"level": "feature_level", "random": "healthy"}.get(mechanism, "healthy")
    acct_id = f"acct-{i:05d}"
    return _Account(
        id=acct_id,
        archetype=archetype,
        rng=rng,
        seats=seats,
        plan=plan,
        price=_PRICES[plan],
        period=period,
        created_day=created,
        joined_day=joined,
        users=users,
        propensity=propensity,
        adopted=max(1, round(seats * adoption)),
        ticket_rate=0.02 * seats**0.6,
        renew_phase=created % 30,
        nps_phase=rng.randrange(0, 90),
        label=Label(acct_id, archetype, plan, seats, joined, mechanism=mechanism),
        scripted=True,
        features=features,
        feature_cum=cum,
        feature_p0=math.exp(-total),
    )


def _holiday(a: _Account, days: int) -> None:
    """A week or so of low activity, then back to normal: a third of accounts take one."""
    rng = a.rng
    if rng.random() < 0.35:
        start = rng.randrange(0, days)
        a.dips.append((start, start + rng.randrange(5, 10), rng.uniform(0.2, 0.5)))


def _decline_story(a: _Account, cfg: SimConfig) -> None:
    """The legacy archetypes, timed so that churn arrives at a steady monthly rate.

    An established account's cancellation day is drawn from the constant hazard that gives the
    target monthly churn, and its story (decline, stop, failed payment...) is laid out backwards
    from it, starting before the log if need be; new accounts churn at 1.5 times the hazard over
    their first two months, as low-from-start or stalled-onboarding accounts.
    """
    rng, days, x = a.rng, cfg.days, cfg.churn_target
    _holiday(a, days)
    cancel: int | None
    if a.created_day >= 0:
        early = 1 - (1 - min(1.0, x * _NEW_EARLY_HAZARD)) ** 2
        churns = rng.random() < early
        a.archetype = pick(rng, _DECLINE_NEW_CHURN_MIX if churns else _DECLINE_NEW_RETAINED_MIX)
        cancel = None
    else:
        hazard = -math.log1p(-x) / 30
        cancel = int(rng.expovariate(hazard)) if hazard > 0 else days
        churns = cancel < days
        a.archetype = pick(rng, _DECLINE_CHURN_MIX if churns else _DECLINE_RETAINED_MIX)
    renewals = _renewal_days(a, days)
    kind = a.archetype
    if kind == "low_from_start":
        a.adopted = max(1, round(a.seats * rng.uniform(0.12, 0.3)))
        a.propensity = [rng.uniform(0.08, 0.25) for _ in a.users]
        cancel = a.joined_day + (30 if rng.random() < 0.6 else 60)
    elif kind == "onboarding_stall":
        a.adopted = min(a.seats, rng.choice((1, 1, 2)))
        a.propensity = [rng.uniform(0.3, 0.6) for _ in a.users]
        cancel = a.joined_day + rng.randrange(30, 61)
    elif kind == "new_healthy":
        a.ramp_days = rng.randrange(14, 35)
    elif kind == "seasonal_dip":
        start = rng.randrange(50, max(51, days - 25))
        a.dips.append((start, start + rng.randrange(14, 22), rng.uniform(0.25, 0.45)))
    elif kind == "recovering_decliner":
        # Usage falls by 40-70% for two to four weeks, then comes back: never cancels.
        length = rng.randrange(14, 29)
        start = rng.randrange(14, max(15, days - length - 7))
        a.recovery = (start, start + length, rng.uniform(0.4, 0.7))
        a.label.decline_day = start  # when the scare begins, to score alerts raised on it
    elif kind in ("retried_payment", "payment_trouble") and not churns:
        due = [day for day in renewals if 20 <= day < days - 7]  # paid again within the log
        if due:
            a.trouble_day = rng.choice(due)
            a.trouble_recovers = True
            a.retry_lag = rng.randrange(1, 4)
        else:  # an annual contract with no renewal in the log has no payment to fail
            a.archetype = "healthy"
    elif kind == "payment_trouble":
        assert cancel is not None
        due = [day for day in renewals if day + 16 <= cancel]
        if due:
            a.trouble_day = due[-1]
            cancel = a.trouble_day + 16
            a.label.churn_type = "involuntary"
        else:
            a.archetype = "gradual_decliner"
    elif kind == "downgrader":
        if churns:
            assert cancel is not None
            down = cancel - rng.randrange(40, 70)
            if down >= 1:
                a.downgrade_day = down
                a.decline = (down + 5, rng.randrange(30, 50))
                a.label.decline_day = down + 5
            else:
                a.archetype = "gradual_decliner"
        else:
            a.downgrade_day = rng.randrange(20, max(21, days - 10))
    elif kind == "detractor":
        if churns:
            assert cancel is not None
            a.nps_bad_from = cancel - rng.randrange(45, 75)
            a.decline = (a.nps_bad_from + 5, rng.randrange(40, 70))
        else:
            a.nps_bad_from = rng.randrange(20, max(21, days - 70))
    if a.archetype == "gradual_decliner":
        assert cancel is not None
        length = rng.randrange(30, 60)
        start = cancel - rng.randrange(0, 20) - length
        a.decline = (start, length)
        a.silent_support_from = start + 10
        if rng.random() < 0.5:
            a.nps_bad_from = start + length // 2
        a.label.decline_day = start
    elif a.archetype == "sudden_stop":
        assert cancel is not None
        a.stop_day = cancel - rng.randrange(14, 45)
        a.label.decline_day = a.stop_day
    a.cancel_day = cancel if cancel is not None and cancel < days else None
    a.cancel_reason = (
        "payment_failed" if a.label.churn_type == "involuntary" else "no longer needed"
    )
    a.label.archetype = a.archetype


def _random_story(a: _Account, cfg: SimConfig) -> None:
    """A healthy account that cancels at a renewal by chance, whatever its usage."""
    rng = a.rng
    _holiday(a, cfg.days)
    for day in _renewal_days(a, cfg.days):
        if rng.random() < _per_renewal(cfg.churn_target, a.period):
            _cancel_at_renewal(a, day, rng.choice(_RANDOM_REASONS))
            break


def _per_renewal(monthly: float, period: str) -> float:
    """An annual renewal carries a year of monthly hazard, so both periods churn alike."""
    return monthly if period == "monthly" else 1 - (1 - monthly) ** 12


def _cancel_at_renewal(a: _Account, day: int, reason: str) -> None:
    a.cancel_day = day
    a.cancel_at_renewal = True
    a.cancel_reason = reason


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def _level_outcomes(accounts: list[_Account], cfg: SimConfig) -> None:
    """Decide the ``level`` accounts' renewals from the level of their segment's key features:
    each account draws its renewals, in order, with its own generator."""
    for a, renewals in _level_risks(accounts, cfg):
        for day, p in renewals:
            if a.rng.random() < p:
                _cancel_at_renewal(a, day, a.rng.choice(_LEVEL_REASONS))
                break


def _level_risks(
    accounts: list[_Account], cfg: SimConfig
) -> Iterator[tuple[_Account, list[tuple[int, float]]]]:
    """Each ``level`` account's renewals in the log with its probability of cancelling there.

    P(cancel at a renewal) = sigmoid(a + sum_k b_k * z_k + first), where z_k is the account's
    log rate of key feature k standardised within its segment, b_k = _KEY_COEF, and ``first``
    lifts a new account's first renewal. The intercept ``a`` is solved per segment by bisection
    so that the expected cancellations per account-month at risk match the target, on these
    very accounts.
    """
    x = cfg.churn_target
    months = cfg.days // 30
    index = {name: k for k, name in enumerate(_FEATURES)}
    for segment, keys in KEY_FEATURES.items():
        group = [a for a in accounts if a.plan == segment]
        if not group:
            continue
        eta = [0.0] * len(group)
        for name in keys:
            values = [a.features[index[name]] for a in group]  # type: ignore[index]
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
            for j, value in enumerate(values):
                eta[j] += _KEY_COEF * (value - mean) / sd
        plans = []  # per account: its renewals as (day, month, linear predictor)
        for a, base in zip(group, eta, strict=True):
            if a.period == "annual":
                base += _ANNUAL_LOGODDS
            renewals = []
            for n, day in enumerate(_renewal_days(a, cfg.days)):
                first = n == 0 and a.created_day >= 0
                renewals.append((day, day // 30, base + (_FIRST_RENEWAL_LOGODDS if first else 0.0)))
            plans.append(renewals)
        intercept = _solve_intercept(group, plans, months, x)
        for a, renewals in zip(group, plans, strict=True):
            yield (
                a,
                [
                    (day, _sigmoid(intercept + linear) if x > 0 else 0.0)
                    for day, _, linear in renewals
                ],
            )


def level_renewal_risks(cfg: SimConfig) -> dict[str, list[tuple[int, float]]]:
    """The truth behind a ``level`` log: per account, (log day, probability of cancelling) at
    each renewal. What a perfect model could know, for measuring how far a learned one is
    from the best any detector can do on this log."""
    if cfg.legacy:
        return {}
    accounts = _scripted_accounts(cfg, random.Random(cfg.seed))
    level = [a for a in accounts if a.label.mechanism == "level"]
    return {a.id: risks for a, risks in _level_risks(level, cfg)}


def _solve_intercept(
    group: list[_Account], plans: list[list[tuple[int, int, float]]], months: int, x: float
) -> float:
    """The intercept whose expected monthly churn (cancellations over account-months present at
    a month's start, over the log's whole months) is ``x``; the rate rises with the intercept."""
    if x <= 0:
        return -50.0
    if months == 0:  # no whole month to average over: the plain rate, unadjusted
        return math.log(x / (1 - x))

    def rate(intercept: float) -> float:
        cancels = exposure = 0.0
        for a, renewals in zip(group, plans, strict=True):
            survive, j = 1.0, 0
            for m in range(-(-a.joined_day // 30), months):
                exposure += survive
                while j < len(renewals) and renewals[j][1] <= m:
                    _, month, linear = renewals[j]
                    j += 1
                    if month < m:
                        continue
                    p = _sigmoid(intercept + linear)
                    cancels += survive * p
                    survive *= 1 - p
        return cancels / exposure if exposure else x

    low, high = -20.0, 10.0
    if rate(high) < x:
        return high
    for _ in range(40):
        mid = (low + high) / 2
        if rate(mid) < x:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def _scripted_accounts(cfg: SimConfig, master: random.Random) -> list[_Account]:
    accounts = []
    for i in range(cfg.accounts):
        rng = random.Random(master.getrandbits(64))
        mechanism = cfg.scenario if cfg.scenario != "mixed" else pick(rng, _MIXED_MECHANISMS)
        a = _scripted_account(i, cfg, rng, mechanism)
        if mechanism == "quality":
            _holiday(a, cfg.days)
            a.story = QualityStory(a, cfg, i)
        elif mechanism == "transactional":
            a.story = BuyerStory(a, cfg, i)
        elif mechanism == "decline":
            _decline_story(a, cfg)
        elif mechanism == "random":
            _random_story(a, cfg)
        else:
            _holiday(a, cfg.days)
        accounts.append(a)
    _level_outcomes([a for a in accounts if a.label.mechanism == "level"], cfg)
    return accounts


def _multiplier(a: _Account, day: int) -> float:
    if a.stop_day is not None and day >= a.stop_day:
        return 0.0
    m = 1.0
    if a.decline is not None:
        start, length = a.decline
        if day >= start:
            m = max(0.04, 1.0 - 0.96 * (day - start) / length)
            if a.archetype == "detractor":
                m = max(m, 0.45)
    for start, end, level in a.dips:
        if start <= day < end:
            m *= level
    if a.recovery is not None:
        start, end, depth = a.recovery
        if start <= day < end:  # down over a week, a trough, back up over the last week
            m *= 1.0 - depth * min(1.0, (day - start + 1) / 7, (end - day) / 7)
    if a.archetype == "onboarding_stall":
        age = day - a.joined_day
        m *= 1.0 if age < 7 else max(0.05, 0.6 - 0.05 * (age - 7))
    if a.ramp_days:
        age = day - a.joined_day
        m *= min(1.0, 0.3 + 0.7 * age / a.ramp_days)
    return m


def _usage_day(a: _Account, w: _Writer, day: int, day_ms: int, weekday_factor: float) -> None:
    rng = a.rng
    m = _multiplier(a, day) * weekday_factor
    if m <= 0:
        return
    active_users = a.adopted
    if a.decline is not None and day >= a.decline[0]:
        share = _multiplier(a, day)
        active_users = max(1, round(a.adopted * max(share, 0.15)))
    elif a.recovery is not None and a.recovery[0] <= day < a.recovery[1]:
        active_users = max(1, round(a.adopted * max(_multiplier(a, day), 0.15)))
    cum = a.feature_cum
    usage = w.usage
    for k in range(active_users):
        if rng.random() >= a.propensity[k] * m:
            continue
        user = a.users[k]
        start = day_ms + rng.randrange(7 * 3_600_000, 19 * 3_600_000)
        usage(a, day, start, "login", user, "", None)
        minutes = min(240.0, rng.lognormvariate(_LOG18, 0.7))
        end = min(start + int(minutes * 60_000), day_ms + DAY_MS - 1)
        usage(a, day, end, "session", user, "duration_s", round(minutes * 60, 1))
        if cum is not None:
            _features_of_login(a, w, day, user, start, end, cum)
        elif rng.random() < 0.5:
            feature = _FEATURES[rng.randrange(len(_FEATURES))]
            usage(a, day, start + 60_000, "feature_used", user, "feature", feature)


def _features_of_login(
    a: _Account, w: _Writer, day: int, user: str, start: int, end: int, cum: list[float]
) -> None:
    """A Poisson number of feature_used events at the account's latent per-login rates."""
    rng, total = a.rng, cum[-1]
    u, p = rng.random(), a.feature_p0
    n, acc = 0, p
    while u > acc and n < 50:
        n += 1
        p *= total / n
        acc += p
    for j in range(1, n + 1):
        feature = _FEATURES[min(bisect_right(cum, rng.random() * total), len(_FEATURES) - 1)]
        w.usage(a, day, min(start + j * 60_000, end), "feature_used", user, "feature", feature)


def _other_day(a: _Account, w: _Writer, day: int, day_ms: int) -> None:
    rng = a.rng
    noon = day_ms + 12 * 3_600_000
    if (
        a.story is None  # a story files its own tickets, with their whole life
        and (a.silent_support_from is None or day < a.silent_support_from)
        and (a.stop_day is None or day < a.stop_day)
        and rng.random() < a.ticket_rate * max(0.2, _multiplier(a, day))
    ):
        w.add(
            a,
            day,
            noon + rng.randrange(0, 3_600_000),
            "support_ticket",
            priority=rng.choice(("low", "normal", "normal", "high")),
        )
    if (day - a.nps_phase) % 90 == 0 and (a.stop_day is None or day < a.stop_day):
        bad = a.nps_bad_from is not None and day >= a.nps_bad_from
        if bad:
            score = rng.randrange(0, 7)
        elif a.archetype == "detractor":
            score = rng.randrange(7, 11)
        else:
            score = rng.choices(range(11), weights=(1, 1, 1, 1, 1, 2, 3, 8, 14, 16, 12))[0]
        w.add(a, day, noon + 7_200_000, "nps_response", user_id=a.users[0], score=score)
    if a.archetype == "downgrader" and day == (
        a.downgrade_day if a.scripted else 40 + (a.nps_phase % 30)
    ):
        new_seats = max(1, round(a.seats * rng.uniform(0.4, 0.7)))
        old_mrr, new_mrr = a.seats * a.price, new_seats * a.price
        w.add(
            a,
            day,
            noon,
            "seats_changed",
            previous_seats=a.seats,
            new_seats=new_seats,
            new_mrr=round(new_mrr, 2),
        )
        a.adopted = max(1, min(a.adopted, new_seats))
        a.seats = new_seats
        # A scripted story already knows whether the downgrade leads to a cancellation.
        if not a.scripted and old_mrr and rng.random() < 0.4 and a.cancel_day is None:
            a.decline = (day + 5, rng.randrange(30, 50))
            a.cancel_day = day + rng.randrange(40, 70)
            a.label.decline_day = day + 5


def _billing_day(a: _Account, w: _Writer, day: int, day_ms: int, cfg: SimConfig) -> None:
    rng = a.rng
    t = day_ms + 2 * 3_600_000
    mrr = round(a.seats * a.price, 2)
    if day == a.joined_day:
        # A new account starts its subscription; one that predates the log first shows up
        # at a renewal carrying its original start, so its tenure is known.
        new = a.created_day >= 0
        w.add(
            a,
            day,
            t,
            "subscription_started" if new else "subscription_renewed",
            plan=a.plan,
            mrr=mrr,
            seats=a.seats,
            billing_period=a.period,
            started_at=None if new else w.iso(w.start_ms + a.created_day * DAY_MS),
            segment=a.plan,
            account_name=company_name(a.id),
            owner=owner_for(a.id, a.plan),
        )
        return
    age = day - a.created_day
    renewal = age % 30 == 0 if a.period == "monthly" else age % 365 == 0
    if not renewal:
        return
    amount = mrr if a.period == "monthly" else mrr * 12
    invoice = f"inv-{a.id}-{day}"
    if a.scripted:
        if day == a.trouble_day:
            _failed_payment(a, w, day, t, invoice, amount)
            return
    elif (
        a.archetype == "payment_trouble"
        and not a.trouble_done
        and a.cancel_day is None
        and day >= 20
    ):
        # Card declined at renewal, retried twice; half the accounts fix it, half churn.
        recovers = rng.random() < 0.5
        retries, paid = ((0, 4), 6) if recovers else ((0, 4, 9), None)
        _retries(a, w, day, t, invoice, amount, retries, paid)
        if not recovers:
            a.cancel_day = day + 16 if day + 16 < cfg.days else None
            a.label.churn_type = "involuntary"
        a.trouble_done = True
        return
    if a.archetype == "late_payer" and rng.random() < 0.6:
        for late in (10, 20):
            w.add(
                a,
                day + late,
                t + late * DAY_MS,
                "invoice_overdue",
                invoice_id=invoice,
                days_late=late,
            )
        w.add(a, day + 24, t + 24 * DAY_MS, "invoice_paid", invoice_id=invoice, amount=amount)
        return
    w.add(
        a,
        day,
        t,
        "subscription_renewed",
        plan=a.plan,
        mrr=mrr,
        seats=a.seats,
        billing_period=a.period,
        segment=a.plan if a.scripted else None,
    )
    w.add(a, day, t + 60_000, "invoice_paid", invoice_id=invoice, amount=amount)


def _failed_payment(a: _Account, w: _Writer, day: int, t: int, invoice: str, amount: float) -> None:
    """A scripted failed payment: retried and paid within days (retried_payment), retried twice
    and paid (payment_trouble that recovers), or retried until the account is cancelled."""
    if a.archetype == "retried_payment":
        _retries(a, w, day, t, invoice, amount, (0,), a.retry_lag)
    elif a.trouble_recovers:
        _retries(a, w, day, t, invoice, amount, (0, 4), 6)
    else:
        _retries(a, w, day, t, invoice, amount, (0, 4, 9), None)


def _retries(
    a: _Account, w: _Writer, day: int, t: int, invoice: str, amount: float,
    retries: tuple[int, ...], paid: int | None,
) -> None:  # fmt: skip
    """The card declined on each of the ``retries`` days after ``day``, then the invoice paid
    ``paid`` days after it (or never)."""
    for retry in retries:
        w.add(
            a,
            day + retry,
            t + retry * DAY_MS,
            "payment_failed",
            invoice_id=invoice,
            amount=amount,
            reason="card_declined",
        )
    if paid is not None:
        w.add(a, day + paid, t + paid * DAY_MS, "invoice_paid", invoice_id=invoice, amount=amount)


def _cancel(a: _Account, w: _Writer, day: int, ms: int) -> None:
    involuntary = a.label.churn_type == "involuntary"
    reason = a.cancel_reason or ("payment_failed" if involuntary else "no longer needed")
    w.add(a, day, ms, "subscription_cancelled", voluntary=not involuntary, reason=reason)
    a.label.outcome = "churned"
    a.label.cancel_ts = w.iso(ms)
    a.label.churn_type = "involuntary" if involuntary else "voluntary"


def generate(cfg: SimConfig, labels: list[Label] | None = None) -> Iterator[dict]:
    """Yield the log's events in event-time order; append each account's truth to ``labels``."""
    start_ms = to_ms(cfg.start) // DAY_MS * DAY_MS
    w = _Writer(start_ms)
    master = random.Random(cfg.seed)
    if cfg.legacy:
        accounts = []
        for i in range(cfg.accounts):
            a = _new_account(i, cfg, random.Random(master.getrandbits(64)))
            _plan_story(a, cfg)
            accounts.append(a)
    else:
        accounts = _scripted_accounts(cfg, master)
    if labels is not None:
        labels.extend(a.label for a in accounts)
    for day in range(cfg.days):
        day_ms = start_ms + day * DAY_MS
        weekday_factor = 1.0 if day_date(day_ms // DAY_MS).weekday() < 5 else 0.12
        todays: list[tuple[int, int, dict]] = []
        for a in accounts:
            if day < a.joined_day or a.label.outcome == "churned":
                a.events.pop(day, None)
                continue
            if a.story is not None and a.story.only:
                a.story.day(a, w, day, day_ms)  # a buyer: orders, no subscription
            elif a.cancel_at_renewal and a.cancel_day == day:
                # The subscription ends as it falls due: no renewal and no use that day.
                _cancel(a, w, day, day_ms + 2 * 3_600_000)
            else:
                _billing_day(a, w, day, day_ms, cfg)
                _usage_day(a, w, day, day_ms, weekday_factor)
                _other_day(a, w, day, day_ms)
                if a.story is not None:
                    a.story.day(a, w, day, day_ms)
                if a.cancel_day == day:
                    _cancel(a, w, day, day_ms + 15 * 3_600_000)
            for ms, event in a.events.pop(day, ()):
                todays.append((ms, len(todays), event))
        todays.sort()  # by time, then arrival: the serials are unique, so dicts never compare
        for _, _, event in todays:
            yield event


@dataclass(frozen=True)
class Noise:
    """Imperfections of a real feed, so tests and demos see them too."""

    jitter_seconds: float = 0.0  # arrival delay, uniform in [0, jitter): mild reordering
    duplicate_rate: float = 0.0  # share of events delivered twice (at-least-once producers)
    junk_rate: float = 0.0  # share of lines that are not valid events at all
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "junk_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.jitter_seconds < 0:
            raise ValueError("jitter_seconds must not be negative")


_JUNK = (
    b"this is not json",
    b'{"event_id": "x", "account_id": "a"',
    b"[1, 2, 3]",
    b'{"type": "login", "account_id": "acct-x", "ts": "2026-01-01T00:00:00Z"}',
    b'{"type": "login", "event_id": "j", "account_id": "a", "ts": "yesterday"}',
    b'{"type": "nps_response", "event_id": "j2", "account_id": "a", '
    b'"ts": "2026-01-01T00:00:00Z", "score": 42}',
    b'{"type": "session", "event_id": "j3", "account_id": 7, "ts": "2026-01-01T00:00:00"}',
    b"\xff\xfe\x00garbage\x00",
    b"null",
)


def serialize(events: Iterator[dict], noise: Noise = Noise()) -> Iterator[bytes]:
    """Encode events as JSONL lines, applying the noise deterministically."""
    import heapq

    from schemas.codec import dumps

    rng = random.Random(noise.seed)
    jitter_ms = int(noise.jitter_seconds * 1000)
    pending: list[tuple[int, int, bytes]] = []
    serial = 0

    def emit(line: bytes) -> Iterator[bytes]:
        if noise.junk_rate and rng.random() < noise.junk_rate:
            yield _JUNK[rng.randrange(len(_JUNK))] + b"\n"
        yield line
        if noise.duplicate_rate and rng.random() < noise.duplicate_rate:
            yield line

    for event in events:
        line = dumps(event) + b"\n"
        if not jitter_ms:
            yield from emit(line)
            continue
        ms = to_ms(datetime.fromisoformat(event["ts"]))
        serial += 1
        heapq.heappush(pending, (ms + rng.randrange(jitter_ms + 1), serial, line))
        while pending and pending[0][0] <= ms:
            yield from emit(heapq.heappop(pending)[2])
    while pending:
        yield from emit(heapq.heappop(pending)[2])
