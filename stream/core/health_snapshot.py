"""An account's health snapshot at a day close (the ``account-health`` topic's value).

Built from the state alone, right after the close's detectors ran, so the worker and replay
publish identical bytes for the same log. The payload follows
:class:`schemas.health.AccountHealth` field for field; it is built as plain data (no model
validation per account-day, which would double a close's cost), and the tests validate
samples against the model.
"""

from __future__ import annotations

import calendar
from datetime import date

from schemas.codec import dumps
from schemas.health import HEALTH_SCHEMA_VERSION
from stream.core import ring
from stream.core.health import dimension_scores, status_of
from stream.core.ring import RING_DAYS
from stream.core.signals import registry
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS, day_date, day_of_date, from_ms

PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12, "yearly": 12}
"""Billing periods as calendar months: a renewal falls on the start's day of the month."""


def add_months(start: date, months: int) -> date:
    """``start`` moved by whole months, on the same day or the month's last (Jan 31 -> Feb 28)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


_PERIODS: dict[tuple[int, int], tuple[int, int, date]] = {}
"""(start day, months) -> (first day, last day, renewal date) of the period last asked for:
an account asks for the same renewal every day of its period, so most look-ups stop here."""


def renewal_date(acct: AccountState, day: int) -> date | None:
    """The first renewal after ``day``: the subscription's start plus whole billing periods.

    ``None`` while the start or the period is unknown (no subscription event yet).
    """
    months = PERIOD_MONTHS.get(acct.billing_period or "")
    if acct.created_ms is None or months is None:
        return None
    key = (acct.created_ms // DAY_MS, months)
    known = _PERIODS.get(key)
    if known is not None and known[0] <= day <= known[1]:
        return known[2]
    due = _next_renewal(from_ms(acct.created_ms).date(), months, day_date(day))
    if len(_PERIODS) > 100_000:  # bounded: start days times periods, rarely near this
        _PERIODS.clear()
    _PERIODS[key] = (day, day_of_date(due) - 1, due)
    return due


def _next_renewal(start: date, months: int, today: date) -> date:
    # Jump close to today first, so a years-old subscription takes a step or two, not hundreds.
    elapsed = (today.year - start.year) * 12 + today.month - start.month
    periods = max(0, elapsed // months - 1)
    while True:
        due = add_months(start, periods * months)
        if due > today:
            return due
        periods += 1


def snapshot(acct: AccountState, ctx: Ctx, cancelled: bool = False) -> dict:
    """The snapshot of ``acct`` on the close of ``ctx.day`` (field order as in the schema)."""
    day = ctx.day
    slot = day % RING_DAYS
    first28 = acct.observed_since(day - 27)
    first7 = acct.observed_since(day - 6)
    since_use = None
    if acct.last_usage_ms:
        since_use = max(0, (ctx.at_ms - acct.last_usage_ms) // DAY_MS)
    scores = dimension_scores(acct.risk)
    overall = min(scores.values())
    firing: list[str] = []
    if acct.episodes:  # most accounts never had one
        firing = [s for s in registry.active.names if acct.is_open(s)]
    return {
        "schema_version": HEALTH_SCHEMA_VERSION,
        "account_id": acct.account_id,
        "day": day_date(day),
        "ts": from_ms(ctx.at_ms),
        "status": "cancelled" if cancelled else "active",
        "account_name": acct.name,
        "owner": acct.owner,
        "segment": acct.segment_name(),
        "plan": acct.plan,
        "stage": ctx.stage,
        "mrr": acct.mrr,
        "seats": acct.seats,
        "tenure_days": ctx.tenure,
        "billing_period": acct.billing_period,
        "renewal_date": renewal_date(acct, day),
        "last_activity": from_ms(acct.last_usage_ms) if acct.last_usage_ms else None,
        "health": {"overall": overall, "status": status_of(overall), **scores},
        "risk_estimate": ctx.risk_estimate,
        "open_signals": firing,
        "metrics": {
            "logins_7d": ring.window_sum(acct.logins, first7, day),
            "logins_28d": ring.window_sum(acct.logins, first28, day),
            "active_users_28d": round(ring.distinct_users(acct.users, first28, day)),
            "active_days_28d": ring.active_days(acct.logins, first28, day),
            "minutes_28d": ring.window_sum(acct.minutes, first28, day),
            "feature_uses_28d": ring.window_sum(acct.features, first28, day),
            "tickets_28d": ring.window_sum(acct.tickets, first28, day),
            "days_since_last_use": since_use,
            "nps_score": acct.nps_score if acct.nps_score >= 0 else None,
            "unpaid_failed_payment": bool(acct.failures) and acct.failures[-1] > acct.last_paid_ms,
        },
        "activity": {
            "logins": acct.logins[slot],
            "active_users": round(ring.day_users(acct.users, day)),
            "minutes": acct.minutes[slot],
            "feature_uses": acct.features[slot],
            "tickets": acct.tickets[slot],
            "nps_score": acct.nps_score if acct.nps_ms and acct.nps_ms // DAY_MS == day else None,
            "invoice_paid": bool(acct.last_paid_ms) and acct.last_paid_ms // DAY_MS == day,
            "payments_failed": sum(1 for ms in acct.failures if ms // DAY_MS == day),
            "invoices_overdue": sum(1 for row in acct.overdue if row[0] // DAY_MS == day),
        },
    }


def snapshot_bytes(acct: AccountState, ctx: Ctx, cancelled: bool = False) -> bytes:
    return dumps(snapshot(acct, ctx, cancelled))
