"""The team's dismissals as labels for calibrate: which alerts people judged false alarms.

``churnwatch alerts actions --kind dismiss`` writes them (one :class:`~schemas.actions.
AlertAction` per line). A dismissal names its alert by account, signal and the episode's
start, which is how a replay of the same log names its openings, so calibrate can find each
dismissed opening among the marks it scores. An account episode (``account_at_risk``) that was
dismissed labels every signal that opened inside it (its reasons).

Outcome beats opinion. For each signal, a dismissed opening whose account then cancelled within
the horizon stays a hit (the dismissal is reported as proven wrong); one whose horizon ended in
the log without a cancellation was a false alarm anyway (reported as confirmed); one the log
cannot judge yet (its horizon runs past the log's end) is counted as a false alarm on the
team's word: the only case where a dismissal changes a figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.actions import InvalidAction, decode_action
from schemas.alerts import ACCOUNT_AT_RISK
from stream.core.timeutil import DAY_MS, to_ms
from stream.offline.backtest import Mark, alerted_verdict
from stream.offline.outcomes import AccountOutcome


class DismissalsError(ValueError):
    """A dismissals file that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Dismissal:
    account_id: str
    signal: str
    episode_start_ms: int
    reason: str


def load_dismissals(text: bytes, source: str) -> list[Dismissal]:
    """The dismissals of a file of action records (other kinds are skipped; one dismissal
    per alert, the latest)."""
    latest: dict[tuple[str, str, int], tuple[str, Dismissal]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            action = decode_action(line)
        except InvalidAction as exc:
            raise DismissalsError(f"{source}, line {number}: not an alert action ({exc})") from None
        if action.kind != "dismiss":
            continue
        key = (action.account_id, action.signal, to_ms(action.episode_start))
        stamp = f"{action.at.isoformat()}|{action.action_id}"
        if key not in latest or latest[key][0] < stamp:
            latest[key] = (stamp, Dismissal(*key, action.reason or ""))
    return [d for _, d in sorted(latest.values(), key=lambda v: v[0])]


Openings = dict[str, dict[str, set[int]]]
"""Per signal, per account, opening times."""


def dismissed_openings(marks: Iterable[Mark], dismissals: Iterable[Dismissal]) -> Openings:
    """Per signal, per account, the opening times the team dismissed."""
    wanted = {(d.account_id, d.signal, d.episode_start_ms) for d in dismissals}
    out: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    inside: dict[str, bool] = {}
    """Per account: whether its open account episode is a dismissed one."""
    for mark in marks:
        key = (mark.account_id, mark.signal, mark.ts_ms)
        if mark.signal == ACCOUNT_AT_RISK:
            if mark.kind == "opened":
                inside[mark.account_id] = key in wanted
                if key in wanted:
                    out[ACCOUNT_AT_RISK][mark.account_id].add(mark.ts_ms)
            elif mark.kind == "resolved":
                inside.pop(mark.account_id, None)
            continue
        if mark.kind == "opened" and (key in wanted or inside.get(mark.account_id)):
            out[mark.signal][mark.account_id].add(mark.ts_ms)
    return {s: dict(accounts) for s, accounts in out.items()}


def verdicts(openings: dict[str, set[int]], outcomes: dict[str, AccountOutcome],
             log_end_ms: int, horizon_days: int) -> dict[str, list[str]]:  # fmt: skip
    """The dismissed accounts of one signal in three lists: ``proven_wrong`` (cancelled within
    the horizon of a dismissed opening), ``confirmed`` (a dismissed opening's horizon ended in
    the log without it), ``unsettled`` (neither yet: the dismissal is the only label)."""
    names = {"hit": "proven_wrong", "false_alarm": "confirmed", "unsettled": "unsettled"}
    found: dict[str, list[str]] = {name: [] for name in names.values()}
    for account in sorted(openings):
        out = outcomes.get(account)
        if out is not None:
            judged = alerted_verdict(openings[account], out, log_end_ms, horizon_days * DAY_MS)
            found[names[judged]].append(account)
    return found


def relabel(per_signal: dict[str, dict], marks: list[Mark], outcomes: dict[str, AccountOutcome],
            log_end_ms: int, horizon_days: int,
            dismissals: list[Dismissal]) -> dict[str, dict]:  # fmt: skip
    """Each signal's figures with the team's dismissals as labels, and what they said.

    ``outcomes`` holds the accounts the figures were scored on (the learning half). An account
    the log left unsettled for a signal (no opening's horizon ended in the log) and whose
    dismissed opening is unsettled too moves from ``censored`` to ``false_alarms``; precision
    is worked out again. Every signal gains ``dismissals``: its three lists' counts.
    """
    dismissed = dismissed_openings(marks, dismissals)
    every: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for mark in marks:
        if mark.kind == "opened" and mark.account_id in outcomes:
            every[mark.signal][mark.account_id].add(mark.ts_ms)
    out = {}
    for signal, numbers in per_signal.items():
        mine = {a: t for a, t in dismissed.get(signal, {}).items() if a in outcomes}
        said = verdicts(mine, outcomes, log_end_ms, horizon_days)
        overall = verdicts({a: every[signal][a] for a in said["unsettled"]}, outcomes,
                           log_end_ms, horizon_days)  # fmt: skip
        moved = len(overall["unsettled"])
        numbers = {**numbers, "dismissals": {k: len(v) for k, v in said.items()}}
        if moved:
            hits, alarms = numbers["hits"], numbers["false_alarms"] + moved
            numbers["dismissals"]["precision_from_the_log_alone"] = numbers["precision"]
            numbers.update(false_alarms=alarms, censored=numbers["censored"] - moved,
                           precision=round(hits / (hits + alarms), 4))  # fmt: skip
        out[signal] = numbers
    return out
