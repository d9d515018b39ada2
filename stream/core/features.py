"""The account's engagement metrics at a day close: one definition for scoring and learning.

Which behaviour predicts churn differs by product (domain notes): logins in one, reports run
or invoices sent in another. So the vector holds every kind of usage the state keeps: logins,
minutes, feature uses in total and per tracked feature, active users and days, their trends,
tenure and the renewal cycle, billing and support facts. The live worker, replay and
``calibrate`` all call :func:`feature_vector`, so the model is scored on exactly the numbers
it was learned from.

Rates are per week over the days the account has been observed (at most the window), so a
ten-day-old account is judged by its ten days, not diluted by eighteen it never had
(tenure-normalised, as the onboarding profiles of the CS platforms are).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

from stream.core import feature_counts, ring
from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.core.state import AccountState

BASE_FEATURES: tuple[tuple[str, str], ...] = (
    ("logins_per_week", "logins per week"),
    ("logins_per_week_last_7d", "logins in the last 7 days"),
    ("logins_per_seat_week", "logins per seat per week"),
    ("active_days_28d", "active days in the last 28"),
    ("minutes_per_week", "minutes in the product per week"),
    ("feature_uses_per_week", "feature uses per week"),
    ("feature_uses_per_login", "feature uses per login"),
    ("minutes_per_login", "minutes per login"),
    ("active_users_28d", "active users in the last 28 days"),
    ("active_user_share", "share of seats active"),
    ("login_trend", "logins, last 14 days against the 28 before (log ratio)"),
    ("minutes_trend", "minutes, last 14 days against the 28 before (log ratio)"),
    ("feature_trend", "feature uses, last 14 days against the 28 before (log ratio)"),
    ("days_since_use", "days since anyone used the product"),
    ("tenure_days", "days since the subscription started"),
    ("days_to_renewal", "days to the next renewal"),
    ("first_term", "still in the first billing term"),
    ("billing_period_days", "days in a billing period"),
    ("renewals_next_60d", "renewals due in the next 60 days"),
    ("unpaid_failure", "a failed payment not yet paid"),
    ("failures_30d", "failed payments in 30 days"),
    ("overdue_90d", "overdue invoices in 90 days"),
    ("contraction", "share of MRR lost to downgrades"),
    ("mrr", "MRR"),
    ("seats", "licensed seats"),
    ("tickets_28d", "support tickets in 28 days"),
    ("ticket_trend", "tickets, last 28 days against the 56 before (log ratio)"),
    ("nps_answered", "answered the NPS survey"),
    ("nps_score", "latest NPS answer"),
)
"""(name, plain words) of the metrics every account has, in vector order."""

QUALITY_PURCHASE_FEATURES: tuple[tuple[str, str], ...] = (
    ("urgent_tickets_28d", "high or urgent tickets in 28 days"),
    ("open_bug_tickets", "open tickets linked to engineering issues"),
    ("oldest_bug_days", "days the oldest bug-linked ticket has been open"),
    ("median_resolution_hours", "median hours to solve a ticket (last 60 days)"),
    ("purchases_28d", "purchases in 28 days"),
    ("purchase_gap_ratio", "days since the last purchase over the usual gap"),
    ("purchase_value_trend", "average purchase, last 4 against the ones before (log ratio)"),
)
"""The product-quality and purchase metrics (issue 16), after the original ones so that a
model learned before them still lines up (see ``RiskModel``, which reads such a model with
zero weight on these)."""
BASE_FEATURES = BASE_FEATURES + QUALITY_PURCHASE_FEATURES
LEGACY_BASE_COUNT = len(BASE_FEATURES) - len(QUALITY_PURCHASE_FEATURES)

WINDOW = 28
RECENT = 14
RENEWAL_LOOKAHEAD = 60
"""Renewals are when subscriptions end: an annual contract is at risk in the weeks before its
renewal and hardly at all in between, which days-to-renewal alone cannot say without the
period, so the vector also counts the renewals due within this many days."""
_PERIOD_DAYS = {"monthly": 30, "annual": 365, "yearly": 365, "quarterly": 91}


_PER = ("per_week", "per_login")
"""The rates kept per tracked feature: how much it is used, and how deeply per visit (a team
that logs in daily but never runs a report differs from one that runs reports at each login)."""


def feature_names(tracked: tuple[str, ...]) -> list[str]:
    """The vector's names: the base metrics, then the rates of each tracked feature and "other"."""
    extra = [f"uses_of_{f}_{per}" for f in (*tracked, "other") for per in _PER] if tracked else []
    return [name for name, _ in BASE_FEATURES] + extra


def describe(name: str) -> str:
    """Plain words for a metric, for explanations a CS manager reads."""
    for key, words in BASE_FEATURES:
        if key == name:
            return words
    for per in _PER:
        if name.startswith("uses_of_") and name.endswith(f"_{per}"):
            feature = name[len("uses_of_") : -len(per) - 1]
            return f"'{feature}' uses {per.replace('_', ' ')}"
    return name.replace("_", " ")


def as_fact(name: str, value: float) -> str | None:
    """A yes/no or categorical metric as a plain fact ("on an annual plan"), or None for a
    quantity, which reads best as its value against peers."""
    if name == "first_term":
        return "in its first billing term" if value else "past its first billing term"
    if name == "billing_period_days":
        return {30: "on a monthly plan", 365: "on an annual plan"}.get(
            int(value), f"billed every {value:g} days"
        )
    if name == "renewals_next_60d":
        return f"{value:g} renewal{'s' if value != 1 else ''} due in the next 60 days"
    if name == "unpaid_failure":
        return "a failed payment is still unpaid" if value else "no failed payment unpaid"
    if name == "nps_answered":
        return "has answered the NPS survey" if value else "never answered the NPS survey"
    return None


def _rate(total: float, days: int) -> float:
    return total * 7 / days if days > 0 else 0.0


def _log_ratio(recent: float, recent_days: int, before: float, before_days: int) -> float:
    """ln of the recent daily rate over the earlier one, both smoothed by one event."""
    if recent_days <= 0 or before_days <= 0:
        return 0.0
    return math.log((recent + 1) / recent_days) - math.log((before + 1) / before_days)


def feature_vector(acct: AccountState, day: int, at_ms: int, slots: int = 0) -> list[float]:
    """The metrics of ``acct`` on the close of ``day`` (``at_ms`` is that instant).

    ``slots`` is how many feature slots the policy tracks (tracked features plus "other"; 0 when
    none are tracked, see :func:`stream.core.feature_counts.slots_for`); each adds two rates,
    and an account that never used one still has zeros there.
    """
    first = max(acct.first_day, day - WINDOW + 1)
    days = day - first + 1
    logins = ring.window_sum(acct.logins, first, day)
    minutes = ring.window_sum(acct.minutes, first, day)
    uses = ring.window_sum(acct.features, first, day)
    week_first = max(acct.first_day, day - 6)
    seats = acct.seats or 0
    users_first = max(acct.first_day, day - WINDOW + 1)
    users = ring.distinct_users(acct.users, users_first, day) if days else 0.0
    trends = []
    recent_first = max(acct.first_day, day - RECENT + 1)
    before_first = max(acct.first_day, recent_first - WINDOW)
    for counters in (acct.logins, acct.minutes, acct.features):
        trends.append(
            _log_ratio(
                ring.window_sum(counters, recent_first, day),
                day - recent_first + 1,
                ring.window_sum(counters, before_first, recent_first - 1),
                recent_first - before_first,
            )
        )
    tenure = (at_ms - acct.created_ms) // DAY_MS if acct.created_ms else day - acct.first_day
    period = _PERIOD_DAYS.get(acct.billing_period or "", 30)
    failures_30d = sum(1 for ms in acct.failures if ms > at_ms - 30 * DAY_MS)
    unpaid = 1.0 if acct.failures and acct.failures[-1] > acct.last_paid_ms else 0.0
    overdue_90d = sum(1 for row in acct.overdue if row[0] > at_ms - 90 * DAY_MS)
    contraction = 0.0
    if acct.contraction_ms and acct.contraction_from_mrr > 0:
        contraction = max(0.0, 1 - acct.contraction_to_mrr / acct.contraction_from_mrr)
    ticket_first = max(acct.first_day, day - WINDOW + 1)
    ticket_before = max(acct.first_day, ticket_first - 2 * WINDOW)
    tickets = ring.window_sum(acct.tickets, ticket_first, day)
    since_use = (at_ms - acct.last_usage_ms) / DAY_MS if acct.last_usage_ms else float(days)
    tenure_days = float(max(0, tenure))
    to_renewal = float(period - tenure_days % period)
    vector = [
        _rate(logins, days),
        _rate(ring.window_sum(acct.logins, week_first, day), day - week_first + 1),
        _rate(logins, days) / seats if seats else 0.0,
        float(ring.active_days(acct.logins, first, day)),
        _rate(minutes, days),
        _rate(uses, days),
        uses / logins if logins else 0.0,
        minutes / logins if logins else 0.0,
        users,
        min(users / seats, 1.0) if seats else 0.0,
        *trends,
        max(0.0, since_use),
        tenure_days,
        to_renewal,
        1.0 if tenure_days < period else 0.0,
        float(period),
        float(
            0 if to_renewal > RENEWAL_LOOKAHEAD else 1 + (RENEWAL_LOOKAHEAD - to_renewal) // period
        ),
        unpaid,
        float(failures_30d),
        float(overdue_90d),
        contraction,
        acct.mrr or 0.0,
        float(seats),
        float(tickets),
        _log_ratio(
            tickets,
            day - ticket_first + 1,
            ring.window_sum(acct.tickets, ticket_before, ticket_first - 1),
            ticket_first - ticket_before,
        ),
        1.0 if acct.nps_score >= 0 else 0.0,
        float(acct.nps_score) if acct.nps_score >= 0 else 7.5,
    ]
    vector.extend(quality_purchase_metrics(acct, day, at_ms))
    if slots:
        rates = tracked_feature_rates(acct, day)
        vector.extend(rates if len(rates) == 2 * slots else [0.0] * (2 * slots))
    return vector


def quality_purchase_metrics(acct: AccountState, day: int, at_ms: int) -> list[float]:
    """The values of :data:`QUALITY_PURCHASE_FEATURES`: what the quality and purchase signals
    judge, as numbers the model can weigh (zeros for accounts without that history)."""
    first = max(acct.first_day, day - WINDOW + 1)
    urgent = sum(1 for d in acct.hot_days if first <= d <= day)
    bugs = oldest = resolution = 0.0
    log = acct.ticket_log
    if log is not None:
        bugs = float(len(log.bugs))
        if log.bugs:
            oldest = max(0.0, (at_ms - min(since for _, _, since in log.bugs)) / DAY_MS)
        recent = sorted(s for ms, s, _ in log.solved if ms > at_ms - 60 * DAY_MS)
        if recent:
            resolution = recent[len(recent) // 2] / 3600
    purchases = gap_ratio = value_trend = 0.0
    orders = acct.purchases
    if orders is not None and len(orders.times):
        times = orders.times
        purchases = float(sum(1 for ms in times if ms > at_ms - WINDOW * DAY_MS))
        if len(times) >= 3:
            gaps = sorted(b - a for a, b in pairwise(times))
            usual = gaps[len(gaps) // 2] or DAY_MS
            gap_ratio = max(0.0, (at_ms - times[-1]) / usual)
        values = [c for c in orders.cents if c >= 0]
        if len(values) >= 6:
            recent_mean = sum(values[-4:]) / 4
            base_mean = sum(values[:-4]) / (len(values) - 4)
            value_trend = math.log((recent_mean + 100) / (base_mean + 100))
    return [float(urgent), bugs, oldest, resolution, purchases, gap_ratio, value_trend]


def tracked_feature_rates(acct: AccountState, day: int) -> list[float]:
    """Per tracked feature (and "other"): uses per week over the last four weeks, and uses per
    login over all the weeks the buckets hold.

    The use per week follows recent change; the depth per login is a level, and a level is
    read best from the longest span (a small team logs in a few dozen times a month). The
    current week is partial, so each rate covers exactly the days its buckets cover.
    """
    if not acct.feature_weeks:
        return []
    recent = _covered(acct, day, WINDOW // 7)
    longest = _covered(acct, day, feature_counts.WEEKS)
    logins = ring.window_sum(acct.logins, day - longest + 1, day)
    out = []
    for week_total, span_total in feature_counts.recent_and_all(acct, day, WINDOW // 7):
        out.append(_rate(week_total, recent))
        out.append(span_total / logins if logins else 0.0)
    return out


def _covered(acct: AccountState, day: int, weeks: int) -> int:
    """Days from the start of the bucket ``weeks - 1`` weeks back (or the first day) to ``day``."""
    return min(day - acct.first_day + 1, (weeks - 1) * 7 + day % 7 + 1)
