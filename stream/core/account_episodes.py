"""One episode per account at risk: the per-signal episodes rolled up into what CS receives.

An account with three firing signals is one customer to call, not three tickets. So, with the
policy's ``[alerting] episodes = "account"`` (the default), the per-signal episodes of
:mod:`stream.core.episodes` keep running exactly as they do for per-signal alerts
(detectors, hysteresis, cooldowns), and what is published is their roll-up, one
``account_at_risk`` episode per account:

* it opens with the account's first open signal episode;
* it is ``updated`` when a signal joins or leaves while others stay open, or when its
  severity (the worst of its reasons') escalates; like a signal's, it never de-escalates;
* it resolves when no signal episode is left open (recovery or cancellation).

Its reasons are the open signal episodes, each shown as its own episode last published it
(the judgement that opened or last escalated it): a record is built at one evaluation, where
only some detectors ran, so each episode keeps that judgement (:class:`StoredReason`) while
it is open. The record itself is :func:`stream.core.alert_builder.build_account_alert`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.alerts import ACCOUNT_AT_RISK, SEVERITY_RANK
from stream.core.episodes import Transition
from stream.core.signals.base import Finding
from stream.core.signals.registry import Registry
from stream.core.state import AccountState, StoredReason


@dataclass(slots=True)
class AccountTransition:
    kind: str  # opened | updated | resolved
    episode_start: int
    sequence: int
    severity: str
    reasons: list[str]
    """Signals whose episodes are open, most severe first, ties in registry order."""
    ended: list[Transition]
    """Signal episodes this evaluation resolved: on a resolved record, its reasons."""
    why: str | None = None
    """The resolution when something other than recovery ended it (the cancellation)."""


def stored_reason(finding: Finding) -> StoredReason:
    """What a record shows of ``finding`` as one of its reasons."""
    return StoredReason(
        finding.metric or finding.signal,
        finding.value,
        finding.baseline,
        finding.threshold,
        finding.window_days,
        finding.explanation,
        finding.series,
        tuple(finding.facts),
    )


def by_severity(signals: list[str], severity_of: dict[str, str], order: Registry) -> list[str]:
    """Most severe first; ties in registry order (the evaluation order of the output contract)."""
    return sorted(signals, key=lambda s: (-SEVERITY_RANK[severity_of[s]], order.index[s]))


def advance(
    acct: AccountState,
    transitions: list[Transition],
    at_ms: int,
    signals: Registry,
    why: str | None = None,
) -> AccountTransition | None:
    """Fold one evaluation's signal transitions into the account episode; what to publish."""
    membership_changed = False
    for t in transitions:
        episode = acct.episodes[t.finding.signal]
        if t.kind == "resolved":
            episode.reason = None
            membership_changed = True
        else:
            episode.reason = stored_reason(t.finding)
            membership_changed = membership_changed or t.kind == "opened"
    episodes = acct.episodes
    severity_of = {
        name: episodes[name].severity
        for name in signals.names
        if name in episodes and episodes[name].is_open
    }
    reasons = by_severity(list(severity_of), severity_of, signals)
    worst = severity_of[reasons[0]] if reasons else ""
    account = episodes.get(ACCOUNT_AT_RISK)
    if account is None or not account.is_open:
        if not reasons:
            return None
        account = acct.episode(ACCOUNT_AT_RISK)
        account.start_ms, account.seq, account.severity = at_ms, 0, worst
        return AccountTransition("opened", at_ms, 0, worst, reasons, [])
    ended = [t for t in transitions if t.kind == "resolved"]
    if not reasons:
        # Nothing is kept of a closed account episode (it has no cooldown): drop it.
        del episodes[ACCOUNT_AT_RISK]
        severity = account.severity or "medium"
        return AccountTransition(
            "resolved", account.start_ms, account.seq + 1, severity, [], ended, why
        )
    escalated = SEVERITY_RANK[worst] > SEVERITY_RANK.get(account.severity, 0)
    if not (membership_changed or escalated):
        return None
    account.seq += 1
    if escalated:
        account.severity = worst
    return AccountTransition(
        "updated", account.start_ms, account.seq, account.severity, reasons, ended
    )
