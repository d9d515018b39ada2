"""From an episode transition to the alert CS tooling receives: evidence, health, context.

The episode state machines (:mod:`stream.core.episodes` per signal,
:mod:`stream.core.account_episodes` per account) decide *that* something is news; this module
decides what the record says. The alert id hashes account, signal (``account_at_risk`` for
an account episode) and episode start, so reprocessing the same input after a crash yields
the same id and consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib

from schemas.alerts import (
    ACCOUNT_AT_RISK,
    AccountContext,
    AlertEvent,
    DailyPoint,
    Evidence,
    Fact,
    Reason,
)
from stream.core import ring
from stream.core.account_episodes import AccountTransition, by_severity, stored_reason
from stream.core.episodes import Transition
from stream.core.health import health
from stream.core.health_snapshot import renewal_date
from stream.core.signals import registry
from stream.core.signals.base import Ctx
from stream.core.state import AccountState, StoredReason
from stream.core.timeutil import day_date, from_ms

EVIDENCE_DAYS = 14
"""Days of the alert's metric shown as daily evidence: two weeks, enough to see the trend."""


def alert_id(account_id: str, signal: str, episode_start_ms: int) -> str:
    digest = hashlib.blake2b(
        f"{account_id}\x1f{signal}\x1f{episode_start_ms}".encode(), digest_size=12
    ).hexdigest()
    return f"al_{digest}"


def _evidence(acct: AccountState, series: str | None, facts, ctx: Ctx) -> Evidence:
    daily: list[DailyPoint] = []
    if series is not None:
        counters = getattr(acct, series)
        last = ctx.day
        first = max(acct.first_day, last - EVIDENCE_DAYS + 1)
        daily = [
            DailyPoint(day=day_date(first + i), value=float(v))
            for i, v in enumerate(ring.values(counters, first, last))
        ]
    return Evidence(daily=daily, facts=[Fact(ts=from_ms(ms), description=t) for ms, t in facts])


def _reason(signal: str, severity: str, since_ms: int, r: StoredReason) -> Reason:
    return Reason(
        signal=signal,
        dimension=registry.active.dimension_of[signal],
        severity=severity,
        since=from_ms(since_ms),
        metric=r.metric,
        value=r.value,
        baseline=r.baseline,
        threshold=r.threshold,
        window_days=r.window_days,
        explanation=r.explanation,
    )


def _context(acct: AccountState, ctx: Ctx) -> AccountContext:
    return AccountContext(
        name=acct.name,
        owner=acct.owner,
        segment=acct.segment_name(),
        stage=ctx.stage,
        plan=acct.plan,
        mrr=acct.mrr,
        seats=acct.seats,
        tenure_days=ctx.tenure,
        renewal_date=renewal_date(acct, ctx.day),
    )


def build_alert(acct: AccountState, t: Transition, ctx: Ctx, trigger: str) -> AlertEvent:
    """The record for one signal's transition: what happened, why, the evidence, what to do."""
    f = t.finding
    lead = stored_reason(f)
    resolved = t.kind == "resolved"
    return _record(
        acct, ctx, trigger, f.signal, t.kind, t.sequence, t.severity, t.episode_start,
        f.signal, lead,
        explanation=f"Resolved: {f.explanation}" if resolved else f.explanation,
        resolution=f.explanation if resolved else None,
        reasons=[_reason(f.signal, t.severity, t.episode_start, lead)],
    )  # fmt: skip


def _record(
    acct: AccountState, ctx: Ctx, trigger: str, signal: str, kind: str, sequence: int,
    severity: str, episode_start: int, lead_signal: str, lead: StoredReason, *,
    explanation: str, resolution: str | None, reasons: list[Reason],
) -> AlertEvent:  # fmt: skip
    """One published record, its numbers, evidence and playbook from its leading reason: a
    signal's own episode leads itself, an account episode is led by its most severe reason."""
    return AlertEvent(
        alert_id=alert_id(acct.account_id, signal, episode_start),
        sequence=sequence,
        kind=kind,
        account_id=acct.account_id,
        signal=signal,
        dimension=registry.active.dimension_of[lead_signal],
        severity=severity,
        ts=from_ms(ctx.at_ms),
        episode_start=from_ms(episode_start),
        trigger=trigger,
        metric=lead.metric,
        value=lead.value,
        baseline=lead.baseline,
        threshold=lead.threshold,
        window_days=lead.window_days,
        explanation=explanation,
        resolution=resolution,
        reasons=reasons,
        evidence=_evidence(acct, lead.series, lead.facts, ctx),
        health=health(acct.risk),
        account=_context(acct, ctx),
        playbook=getattr(ctx.th, lead_signal).playbook,
    )


def _fallback(signal: str, since_ms: int) -> StoredReason:
    """A reason for an episode opened before the account episode kept reasons (the policy
    switched from per-signal episodes while it was open): its numbers were not kept."""
    when = from_ms(since_ms).date().isoformat()
    return StoredReason(signal, 0.0, None, 0.0, None, f"{signal} firing since {when}", None, ())


def build_account_alert(
    acct: AccountState, t: AccountTransition, ctx: Ctx, trigger: str
) -> AlertEvent:
    """The record of an account episode: led by its most severe reason, listing them all."""
    parts: list[tuple[str, str, int, StoredReason]]
    if t.kind == "resolved":
        ended = {e.finding.signal: e for e in t.ended}
        order = by_severity(list(ended), {s: e.severity for s, e in ended.items()}, registry.active)
        parts = [
            (s, ended[s].severity, ended[s].episode_start, stored_reason(ended[s].finding))
            for s in order
        ]
    else:
        parts = []
        for signal in t.reasons:
            ep = acct.episodes[signal]
            kept = ep.reason or _fallback(signal, ep.start_ms)
            parts.append((signal, ep.severity, ep.start_ms, kept))
    lead_signal, _, _, lead = parts[0]
    if t.kind == "resolved":
        resolution = t.why or "No signal is firing any more. Last to recover: " + "; ".join(
            f"{signal}: {r.explanation}" for signal, _, _, r in parts
        )
        explanation = f"Resolved: {resolution}"
    else:
        resolution = None
        others = [signal for signal, _, _, _ in parts[1:]]
        explanation = lead.explanation
        if others:
            explanation += f"; and {len(others)} more: {', '.join(others)}"
        if t.ended:
            explanation += ". Recovered: " + ", ".join(e.finding.signal for e in t.ended)
    return _record(
        acct, ctx, trigger, ACCOUNT_AT_RISK, t.kind, t.sequence, t.severity, t.episode_start,
        lead_signal, lead,
        explanation=explanation,
        resolution=resolution,
        reasons=[_reason(*part) for part in parts],
    )  # fmt: skip
