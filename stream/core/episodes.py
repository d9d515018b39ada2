"""Edge-triggered alert episodes: open once, update on a severity change, resolve on recovery.

Per (account, signal) there is at most one open episode. A firing detector opens one unless
the cooldown ("at most N openings per X days") is spent; while it is open, only a change of
severity produces a record; a clear finding (already past the detector's hysteresis line)
resolves it. Turning a transition into the published alert is
:mod:`stream.core.alert_builder`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.alerts import SEVERITY_RANK
from stream.core.signals.base import CLEAR, FIRING, Ctx, Finding
from stream.core.state import AccountState, Episode
from stream.core.timeutil import DAY_MS


@dataclass(slots=True)
class Transition:
    kind: str  # opened | updated | resolved
    finding: Finding
    episode_start: int
    sequence: int
    severity: str


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
