"""Edge-triggered alert episodes: open once, update on a severity change, resolve on recovery.

Per (account, signal) there is at most one open episode. A firing detector opens one unless
the cooldown ("at most N openings per X days") is spent; while it is open, only a change of
severity produces a record; a clear finding (already past the detector's hysteresis line)
resolves it. The alert id hashes account, signal and episode start, so reprocessing the same
input after a crash yields the same id and consumers can de-duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from schemas.alerts import (
    SEVERITY_RANK,
    AccountContext,
    AlertEvent,
    DailyPoint,
    Evidence,
    Fact,
)
from stream.core import ring
from stream.core.health import health
from stream.core.signals.base import CLEAR, FIRING, Ctx, Finding
from stream.core.signals.registry import DIMENSION_OF
from stream.core.state import AccountState, Episode
from stream.core.timeutil import DAY_MS, day_date, from_ms

EVIDENCE_DAYS = 14


@dataclass(slots=True)
class Transition:
    kind: str  # opened | updated | resolved
    finding: Finding
    episode_start: int
    sequence: int
    severity: str


def alert_id(account_id: str, signal: str, episode_start_ms: int) -> str:
    digest = hashlib.blake2b(
        f"{account_id}\x1f{signal}\x1f{episode_start_ms}".encode(), digest_size=12
    ).hexdigest()
    return f"al_{digest}"


def step(acct: AccountState, finding: Finding, at_ms: int, ctx: Ctx) -> Transition | str | None:
    """Advance the episode of ``finding.signal``; return what to emit, or why nothing was."""
    signal = finding.signal
    episode = acct.episodes.get(signal)
    if finding.status == FIRING:
        if episode is None or not episode.is_open:
            policy = getattr(ctx.th, signal)
            if episode is None:
                episode = acct.episode(signal)
            horizon = at_ms - policy.per_days * DAY_MS
            episode.opens = [t for t in episode.opens if t > horizon]
            if len(episode.opens) >= policy.max_opens:
                return "suppressed"
            episode.opens.append(at_ms)
            episode.start_ms = at_ms
            episode.seq = 0
            episode.severity = finding.severity
            return Transition("opened", finding, at_ms, 0, finding.severity)
        if SEVERITY_RANK[finding.severity] > SEVERITY_RANK[episode.severity]:
            # Severity only escalates within an episode: a dip back to a milder band is not
            # news for CS, recovery is (it resolves the episode).
            episode.seq += 1
            episode.severity = finding.severity
            return Transition("updated", finding, episode.start_ms, episode.seq, finding.severity)
        return None
    if finding.status == CLEAR and episode is not None and episode.is_open:
        return _close(episode, finding)
    return None


def close(acct: AccountState, signal: str, finding: Finding) -> Transition | None:
    """Resolve an open episode whatever the detector says (the subscription was cancelled)."""
    episode = acct.episodes.get(signal)
    if episode is None or not episode.is_open:
        return None
    return _close(episode, finding)


def _close(episode: Episode, finding: Finding) -> Transition:
    episode.seq += 1
    transition = Transition(
        "resolved", finding, episode.start_ms, episode.seq, episode.severity or "medium"
    )
    episode.start_ms = 0
    episode.severity = ""
    return transition


def build_alert(acct: AccountState, t: Transition, ctx: Ctx, trigger: str) -> AlertEvent:
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
        dimension=DIMENSION_OF[signal],
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
