"""A seeded generator of realistic usage and billing logs with known outcomes.

Accounts follow archetypes drawn from the domain notes: healthy accounts with a weekly rhythm,
holidays and noise; gradual decliners that cancel; accounts weak from their first weeks that
leave at a renewal without ever declining; sudden stops (the champion left); onboarding stalls;
failed payments (involuntary churn), late payers, downgraders and NPS detractors. Every account's
true outcome goes to the labels, so detectors and calibration can be scored against the truth.

Generation is pure: ``generate(config)`` yields event dicts in event-time order, and the same
seed always gives the same log (``random.Random(seed)`` per account, nothing global).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stream.core.timeutil import DAY_MS, day_date

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

_PLANS = (("starter", 5, 15.0), ("pro", 50, 30.0), ("enterprise", 10**9, 50.0))
_FEATURES = ("reports", "dashboards", "export", "integrations", "alerts", "api", "sharing")


@dataclass(frozen=True)
class SimConfig:
    accounts: int = 1000
    days: int = 150
    seed: int = 7
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    new_fraction: float = 0.3
    """Share of accounts that sign up during the log (the rest exist before it starts)."""

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("accounts must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0 <= self.new_fraction <= 1:
            raise ValueError("new_fraction must be between 0 and 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")


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


def _pick(rng: random.Random, mix: dict[str, float]) -> str:
    x = rng.random() * sum(mix.values())
    for name, weight in mix.items():
        x -= weight
        if x < 0:
            return name
    return next(reversed(mix))


def _plan_for(seats: int) -> tuple[str, float]:
    for name, max_seats, price in _PLANS:
        if seats <= max_seats:
            return name, price
    raise AssertionError("unreachable")


class _Writer:
    """Turns (account, day, ms, type, fields) into event dicts with unique, stable ids."""

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.serial = 0
        self._prefix: dict[int, str] = {}

    def iso(self, ms: int) -> str:
        day, rest = divmod(ms, DAY_MS)
        prefix = self._prefix.get(day)
        if prefix is None:
            prefix = self._prefix[day] = day_date(day).isoformat() + "T"
        seconds, millis = divmod(rest, 1000)
        minutes, sec = divmod(seconds, 60)
        hours, minute = divmod(minutes, 60)
        return f"{prefix}{hours:02d}:{minute:02d}:{sec:02d}.{millis:03d}Z"

    def add(self, acct: _Account, log_day: int, ms: int, kind: str, **fields: object) -> None:
        self.serial += 1
        event = {
            "event_id": f"ev-{self.serial:010d}",
            "account_id": acct.id,
            "ts": self.iso(ms),
            "type": kind,
            **{k: v for k, v in fields.items() if v is not None},
        }
        acct.events.setdefault(log_day, []).append((ms, event))


def _new_account(i: int, cfg: SimConfig, rng: random.Random) -> _Account:
    new = rng.random() < cfg.new_fraction
    archetype = _pick(rng, NEW_MIX if new else ESTABLISHED_MIX)
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
    if a.archetype == "onboarding_stall":
        age = day - a.joined_day
        m *= 1.0 if age < 7 else max(0.05, 0.6 - 0.05 * (age - 7))
    if a.ramp_days:
        age = day - a.joined_day
        m *= min(1.0, 0.3 + 0.7 * age / a.ramp_days)
    return m


def _usage_day(a: _Account, w: _Writer, day: int, day_ms: int) -> None:
    rng = a.rng
    weekday = day_date(day_ms // DAY_MS).weekday()
    m = _multiplier(a, day) * (1.0 if weekday < 5 else 0.12)
    if m <= 0:
        return
    active_users = a.adopted
    if a.decline is not None and day >= a.decline[0]:
        share = _multiplier(a, day)
        active_users = max(1, round(a.adopted * max(share, 0.15)))
    for k in range(active_users):
        if rng.random() >= a.propensity[k] * m:
            continue
        user = a.users[k]
        start = day_ms + rng.randrange(7 * 3_600_000, 19 * 3_600_000)
        w.add(a, day, start, "login", user_id=user)
        minutes = min(240.0, rng.lognormvariate(math.log(18), 0.7))
        end = min(start + int(minutes * 60_000), day_ms + DAY_MS - 1)
        w.add(a, day, end, "session", user_id=user, duration_s=round(minutes * 60, 1))
        if rng.random() < 0.5:
            w.add(
                a,
                day,
                start + 60_000,
                "feature_used",
                user_id=user,
                feature=_FEATURES[rng.randrange(len(_FEATURES))],
            )


def _other_day(a: _Account, w: _Writer, day: int, day_ms: int) -> None:
    rng = a.rng
    noon = day_ms + 12 * 3_600_000
    if (
        (a.silent_support_from is None or day < a.silent_support_from)
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
    if a.archetype == "downgrader" and day == 40 + (a.nps_phase % 30):
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
        if old_mrr and rng.random() < 0.4 and a.cancel_day is None:
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
        )
        return
    age = day - a.created_day
    renewal = age % 30 == 0 if a.period == "monthly" else age % 365 == 0
    if not renewal:
        return
    amount = mrr if a.period == "monthly" else mrr * 12
    invoice = f"inv-{a.id}-{day}"
    if (
        a.archetype == "payment_trouble"
        and not a.trouble_done
        and a.cancel_day is None
        and day >= 20
    ):
        # Card declined at renewal, retried twice; half the accounts fix it, half churn.
        recovers = rng.random() < 0.5
        for retry in (0, 4, 9):
            w.add(
                a,
                day + retry,
                t + retry * DAY_MS,
                "payment_failed",
                invoice_id=invoice,
                amount=amount,
                reason="card_declined",
            )
            if recovers and retry == 4:
                w.add(a, day + 6, t + 6 * DAY_MS, "invoice_paid", invoice_id=invoice, amount=amount)
                break
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
    )
    w.add(a, day, t + 60_000, "invoice_paid", invoice_id=invoice, amount=amount)


def _cancel(a: _Account, w: _Writer, day: int, day_ms: int) -> None:
    involuntary = a.label.churn_type == "involuntary"
    ms = day_ms + 15 * 3_600_000
    w.add(
        a,
        day,
        ms,
        "subscription_cancelled",
        voluntary=not involuntary,
        reason="payment_failed" if involuntary else "no longer needed",
    )
    a.label.outcome = "churned"
    a.label.cancel_ts = w.iso(ms)
    a.label.churn_type = "involuntary" if involuntary else "voluntary"


def generate(cfg: SimConfig, labels: list[Label] | None = None) -> Iterator[dict]:
    """Yield the log's events in event-time order; append each account's truth to ``labels``."""
    start_ms = int(cfg.start.timestamp() * 1000) // DAY_MS * DAY_MS
    w = _Writer(start_ms)
    master = random.Random(cfg.seed)
    accounts = []
    for i in range(cfg.accounts):
        a = _new_account(i, cfg, random.Random(master.getrandbits(64)))
        _plan_story(a, cfg)
        accounts.append(a)
        if labels is not None:
            labels.append(a.label)
    for day in range(cfg.days):
        day_ms = start_ms + day * DAY_MS
        todays: list[tuple[int, int, dict]] = []
        for a in accounts:
            if day < a.joined_day or a.label.outcome == "churned":
                a.events.pop(day, None)
                continue
            _billing_day(a, w, day, day_ms, cfg)
            _usage_day(a, w, day, day_ms)
            _other_day(a, w, day, day_ms)
            if a.cancel_day == day:
                _cancel(a, w, day, day_ms)
            for ms, event in a.events.pop(day, ()):
                todays.append((ms, len(todays), event))
        todays.sort(key=lambda item: (item[0], item[1]))
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
        ms = int(datetime.fromisoformat(event["ts"]).timestamp() * 1000)
        serial += 1
        heapq.heappush(pending, (ms + rng.randrange(jitter_ms + 1), serial, line))
        while pending and pending[0][0] <= ms:
            yield from emit(heapq.heappop(pending)[2])
    while pending:
        yield from emit(heapq.heappop(pending)[2])
