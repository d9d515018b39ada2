"""From an episode transition to the alert CS tooling receives: evidence, health, context.

The episode state machine (:mod:`stream.core.episodes`) decides *that* something is news; this
module decides what the record says. The alert id hashes account, signal and episode start,
so reprocessing the same input after a crash yields the same id and consumers can
de-duplicate.
"""

from __future__ import annotations

import hashlib

from schemas.alerts import AccountContext, AlertEvent, DailyPoint, Evidence, Fact
from stream.core import ring
from stream.core.episodes import Transition
from stream.core.health import health
from stream.core.signals import registry
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.core.timeutil import day_date, from_ms

EVIDENCE_DAYS = 14
"""Days of the alert's metric shown as daily evidence: two weeks, enough to see the trend."""


def alert_id(account_id: str, signal: str, episode_start_ms: int) -> str:
    digest = hashlib.blake2b(
        f"{account_id}\x1f{signal}\x1f{episode_start_ms}".encode(), digest_size=12
    ).hexdigest()
    return f"al_{digest}"


def build_alert(acct: AccountState, t: Transition, ctx: Ctx, trigger: str) -> AlertEvent:
    """The record for one transition: what happened, why, the evidence and what to do."""
    f = t.finding
    signal = f.signal
    resolved = t.kind == "resolved"
    daily: list[DailyPoint] = []
    if f.series is not None:
        counters = getattr(acct, f.series)
        last = ctx.day
        first = max(acct.first_day, last - EVIDENCE_DAYS + 1)
        daily = [
            DailyPoint(day=day_date(first + i), value=float(v))
            for i, v in enumerate(ring.values(counters, first, last))
        ]
    facts = [Fact(ts=from_ms(ms), description=text) for ms, text in f.facts]
    return AlertEvent(
        alert_id=alert_id(acct.account_id, signal, t.episode_start),
        sequence=t.sequence,
        kind=t.kind,
        account_id=acct.account_id,
        signal=signal,
        dimension=registry.active.dimension_of[signal],
        severity=t.severity,
        ts=from_ms(ctx.at_ms),
        episode_start=from_ms(t.episode_start),
        trigger=trigger,
        metric=f.metric or signal,
        value=f.value,
        baseline=f.baseline,
        threshold=f.threshold,
        window_days=f.window_days,
        explanation=f.explanation if not resolved else f"Resolved: {f.explanation}",
        resolution=f.explanation if resolved else None,
        evidence=Evidence(daily=daily, facts=facts),
        health=health(acct.risk),
        account=AccountContext(
            segment=acct.segment_name(),
            stage=ctx.stage,
            plan=acct.plan,
            mrr=acct.mrr,
            seats=acct.seats,
            tenure_days=ctx.tenure,
        ),
        playbook=getattr(ctx.th, signal).playbook,
    )
