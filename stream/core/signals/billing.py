"""Billing: failed and late payments (involuntary churn) and contraction (revenue churn).

These fire on the billing event itself, so CS hears within a second of the failure; a later
``invoice_paid`` resolves them, and day closes only age them (cooldowns, quiet periods).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from stream.core.signals.base import (
    CLEAR,
    FIRING,
    HOLD,
    Ctx,
    Finding,
    SignalPolicy,
    fmt,
    pct,
    set_risk,
    stand_down,
)
from stream.core.timeutil import DAY_MS

if TYPE_CHECKING:
    from stream.core.state import AccountState


class PaymentFailedPolicy(SignalPolicy):
    high_failures: int = Field(default=2, ge=1, description="failures within window_days for high")
    window_days: int = Field(default=30, ge=1, le=365)
    grace_days: int = Field(
        default=3, ge=0, le=60, description="let the card retry pay before alerting (0: at once)"
    )
    playbook: str = "Payment failed: confirm the card on file with the billing contact today."


class InvoiceOverduePolicy(SignalPolicy):
    medium_days: int = Field(default=7, ge=0)
    high_days: int = Field(default=30, ge=0)
    repeat_window_days: int = Field(default=90, ge=1, le=3650)
    playbook: str = "Invoice overdue: check with finance whether budget or approval is blocked."

    @model_validator(mode="after")
    def _ordered(self) -> InvoiceOverduePolicy:
        if self.high_days < self.medium_days:
            raise ValueError("high_days must be at least medium_days")
        return self


class DowngradePolicy(SignalPolicy):
    min_contraction: float = Field(default=0.1, gt=0, le=1, description="MRR share lost")
    high_contraction: float = Field(default=0.3, gt=0, le=1)
    quiet_days: int = Field(default=30, ge=1, le=365, description="resolve after this calm")
    playbook: str = "Contraction: learn why they cut back before the renewal conversation."

    @model_validator(mode="after")
    def _ordered(self) -> DowngradePolicy:
        if self.high_contraction < self.min_contraction:
            raise ValueError("high_contraction must be at least min_contraction")
        return self


def payment_failed(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: PaymentFailedPolicy = getattr(ctx.th, signal)
    if not p.enabled or not acct.failures:
        return None
    unpaid = [ms for ms in acct.failures if ms > acct.last_paid_ms]
    if not unpaid:
        if not stand_down(acct, signal):
            return None
        return Finding(
            signal,
            CLEAR,
            metric="failed_payments",
            value=0.0,
            threshold=1.0,
            explanation="An invoice was paid after the failed payment",
        )
    since = ctx.at_ms - p.window_days * DAY_MS
    recent = sum(1 for ms in acct.failures if ms > since)
    high = recent >= p.high_failures
    if not high and ctx.at_ms - unpaid[0] < p.grace_days * DAY_MS:
        # Most failed card payments are paid by the processor's retry within days: alerting
        # on the first failure sends CS after accounts that were never at risk.
        return Finding(signal, HOLD) if stand_down(acct, signal, 60) else None
    set_risk(acct, signal, 80 if high else 60)
    return Finding(
        signal,
        FIRING,
        "high" if high else "medium",
        metric="failed_payments",
        value=float(recent),
        threshold=1.0,
        window_days=p.window_days,
        explanation=(
            f"{recent} failed payment{'s' if recent != 1 else ''} in the last {p.window_days} "
            f"days and no invoice paid since"
        ),
        facts=[(ms, "payment failed") for ms in unpaid],
    )


def invoice_overdue(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: InvoiceOverduePolicy = getattr(ctx.th, signal)
    if not p.enabled or not acct.overdue:
        return None
    unpaid = [(ms, days) for ms, days, _ in acct.overdue if ms > acct.last_paid_ms]
    worst = max((days for _, days in unpaid), default=0)
    since = ctx.at_ms - p.repeat_window_days * DAY_MS
    late_invoices = {inv for ms, days, inv in acct.overdue if ms > since and days >= p.medium_days}
    if worst < p.medium_days:
        if not stand_down(acct, signal):
            return None
        return Finding(
            signal,
            CLEAR,
            metric="days_late",
            value=float(worst),
            threshold=float(p.medium_days),
            explanation="The overdue invoice was paid",
        )
    high = worst >= p.high_days or len(late_invoices) >= 2
    set_risk(acct, signal, 80 if high else 60)
    repeat = (
        f"; {len(late_invoices)} invoices late in {p.repeat_window_days} days"
        if len(late_invoices) >= 2
        else ""
    )
    return Finding(
        signal,
        FIRING,
        "high" if high else "medium",
        metric="days_late",
        value=float(worst),
        threshold=float(p.medium_days),
        window_days=p.repeat_window_days,
        explanation=f"Invoice {worst} days overdue (alert at {p.medium_days}){repeat}",
        facts=[(ms, f"invoice {days} days overdue") for ms, days in unpaid],
    )


def downgrade(acct: AccountState, ctx: Ctx, signal: str) -> Finding | None:
    p: DowngradePolicy = getattr(ctx.th, signal)
    if not p.enabled or not acct.contraction_ms:
        return None
    before, after = acct.contraction_from_mrr, acct.contraction_to_mrr
    contraction = 1.0 - after / before if before > 0 else 0.0
    calm = ctx.at_ms - acct.contraction_ms >= p.quiet_days * DAY_MS
    if calm or contraction <= 0:
        # The contraction is over: forget it, so the next one is measured from the new MRR.
        acct.contraction_ms = 0
        if not stand_down(acct, signal):
            return None
        why = (
            f"no further contraction for {p.quiet_days} days"
            if calm
            else f"MRR back to {fmt(after)} (from {fmt(before)})"
        )
        return Finding(
            signal,
            CLEAR,
            metric="mrr_contraction",
            value=round(max(contraction, 0.0), 4),
            threshold=p.min_contraction,
            explanation=why,
        )
    if contraction < p.min_contraction:
        # Small cuts accumulate from the same starting MRR until they add up to an alert.
        held = stand_down(acct, signal, int(50 * contraction / p.min_contraction))
        return Finding(signal, HOLD) if held else None
    high = contraction >= p.high_contraction
    set_risk(acct, signal, 80 if high else 60)
    return Finding(
        signal,
        FIRING,
        "high" if high else "medium",
        metric="mrr_contraction",
        value=round(contraction, 4),
        baseline=round(before, 2),
        threshold=p.min_contraction,
        window_days=p.quiet_days,
        explanation=(
            f"MRR contracted {pct(contraction)} from {fmt(before)} to {fmt(after)}"
            + (f" (plan {acct.plan})" if acct.plan else "")
        ),
        facts=[(acct.contraction_ms, f"MRR {fmt(before)} -> {fmt(after)}")],
    )
