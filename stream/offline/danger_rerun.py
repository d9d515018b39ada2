"""The danger zone's episodes at other lines, from calibration's samples instead of a replay.

Calibration needs the calibrated rules' episodes to learn the risk model against (the model
spends what alert budget they leave). Those rules differ from the base policy in two ways
only: the danger-zone lines it learned, and the signals it switched off. Every other signal's
episodes depend on its own detector and the account's events, not on the other signals'
settings (the one coupling, :attr:`SignalSpec.excludes`, is checked: see :func:`exact_for`),
so they are the base replay's. The danger zone is judged at day closes only, on one measure
(logins over a window, against the line for the account's seats), and the day probe records
that measure for every judged account-day; so its episodes at any line follow from the
samples: the detector's rule (below the line beyond the Poisson floor opens, back above the
line plus the clear margin resolves, in between holds), the cooldown, and the cancellations
that close every open episode.

That rule is restated here from :func:`stream.core.signals.usage.danger_zone`, so it is
checked on every run: re-run at the base policy's own lines, the samples must give exactly
the danger-zone episodes the base replay published, account for account; if they do not (a
cancellation the engine dropped as late, a detector change this module missed), calibration
replays the calibrated rules instead.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable

from stream.core.policy import DEFAULT_SEGMENT, STAGES, Policy
from stream.core.signals import registry
from stream.core.timeutil import DAY_MS
from stream.offline.backtest import Mark

SIGNAL = "danger_zone"

DangerRow = tuple[int, float, str, str, int, int, int]
"""One judged account-day: (day, trigger line, segment, stage, logins, window days, seats)."""


Change = tuple[str, int, bool]
"""(opened | resolved, epoch ms, whether at a day close; else at a cancellation)."""


def episodes(
    rows_by_account: dict[str, list[DangerRow]],
    cancels: dict[str, list[int]],
    policy: Policy,
    keep: Container[str] | None = None,
) -> dict[str, list[Change]]:
    """Per account (in ``keep``, or all), the danger zone's episode changes under ``policy``.

    Rows are an account's judged days in order; a cancellation at ``ms`` comes after the
    closes of the days before its own (the engine closes them before it applies the event)
    and ends an open episode, as :meth:`PartitionEngine._churned` does.
    """
    out: dict[str, list[Change]] = {}
    for account, rows in rows_by_account.items():
        if keep is not None and account not in keep:
            continue
        churns = sorted(cancels.get(account, ()))
        found: list[Change] = []
        opened = False
        opens: list[int] = []  # the cooldown's openings, kept across episodes
        next_churn = 0
        for day, _, segment, stage, logins, days, seats in rows:
            at = (day + 1) * DAY_MS
            while next_churn < len(churns) and churns[next_churn] < at:
                if opened:
                    found.append(("resolved", churns[next_churn], False))
                    opened = False
                next_churn += 1
            p = policy.thresholds(segment, stage).danger_zone
            line = p.line
            if not p.enabled or line <= 0:
                continue  # the detector says nothing, or holds an open episode
            level = logins * 7 / days / seats
            below = level < line
            if below and p.min_z > 0:
                expected = line * seats * days / 7
                if (logins - expected) / math.sqrt(expected) > -p.min_z:
                    below = False
            if below:
                if opened:
                    continue  # a severity change at most: no episode boundary
                opens = [t for t in opens if t > at - p.per_days * DAY_MS]
                if len(opens) >= p.max_opens:
                    continue  # the cooldown is spent
                opens.append(at)
                found.append(("opened", at, True))
                opened = True
            elif opened and level >= line * (1 + p.clear_margin):
                found.append(("resolved", at, True))
                opened = False
        for ms in churns[next_churn:]:
            if opened:
                found.append(("resolved", ms, False))
                opened = False
        if found:
            out[account] = found
    return out


def same_as_published(found: dict[str, list[Change]], marks: Iterable[Mark]) -> bool:
    """Whether ``found`` is the danger zone's openings and resolutions in a replay's marks."""
    published: dict[str, list[tuple[str, int]]] = {}
    for mark in marks:
        if mark.signal == SIGNAL and mark.kind in ("opened", "resolved"):
            published.setdefault(mark.account_id, []).append((mark.kind, mark.ts_ms))
    again = {a: [(kind, ms) for kind, ms, _ in changes] for a, changes in found.items()}
    return again == published


def as_marks(found: dict[str, list[Change]]) -> list[Mark]:
    return [
        Mark(account, SIGNAL, kind, ms, overall=False)
        for account, spans in found.items()
        for kind, ms, _ in spans
    ]


def exact_for(policy: Policy, switched_off: Iterable[str], held_by_exclusion: int) -> bool:
    """Whether the base replay's marks, less the switched-off signals, are the calibrated
    rules' own for every signal but the danger zone.

    A switched-off signal must be off in every (segment, stage): the policy's named segments,
    and the defaults that every other segment gets. And switching off a signal that keeps
    another from opening (:attr:`SignalSpec.excludes`) changes that other signal's episodes
    if it ever did keep it from opening in the base replay (``held_by_exclusion``).
    """
    off = set(switched_off)
    segments = [*policy.segments, DEFAULT_SEGMENT]
    for signal in off:
        for segment in segments:
            for stage in STAGES:
                if getattr(policy.thresholds(segment, stage), signal).enabled:
                    return False
    coupled = {s for s, others in registry.active.excluded_by.items() for s in (s, *others)}
    return not (held_by_exclusion and off & coupled)
