"""The calibrated policy's alerts on the held-out accounts, without replaying the log again.

The held-out check scores the policy calibrate writes on accounts it did not learn from. That
policy differs from the base one the first replay ran in three ways: the danger-zone lines,
the switched-off signals, and the learned churn-risk model. The other signals' episodes are
the base replay's (:func:`stream.offline.danger_rerun.exact_for`); the danger zone is judged
again at its new lines (:mod:`stream.offline.danger_rerun`); and the churn-risk detector is a
function of the feature vector the day probe sampled at every day close (the very vector the
engine scores, :func:`stream.core.features.feature_vector`), its threshold, hysteresis and
cooldown, and the cancellations. What CS receives is then rolled up as
:mod:`stream.core.account_episodes` does: per evaluation, an account episode opens with the
first open signal episode and resolves with the last.

An evaluation of the new signals at a day close is the same evaluation as the base replay's
record of that close, if it published one, and otherwise stands where the close ran among
the account's records (each sampled close notes how many records came before it). The whole
roll-up is checked on every run against what the base replay published: the base replay's
records, with its danger zone taken out and judged again from the samples, must roll up to
exactly its account episodes. When that or any other condition fails, calibrate replays the
policy instead (``None`` here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from schemas.alerts import ACCOUNT_AT_RISK
from stream.core.policy import Policy
from stream.core.signals.risk import Weights, probability
from stream.core.timeutil import DAY_MS
from stream.offline import danger_rerun
from stream.offline.backtest import Mark
from stream.offline.calibrate import DangerSamples
from stream.offline.danger_rerun import Change
from stream.offline.evaluation import LogRun
from stream.offline.risk_calibration import FeatureSamples

RISK = "churn_risk"
EXACT_BAND = 1e-9
"""Probabilities computed with numpy this close to a threshold are computed again exactly as
the engine does (:func:`stream.core.signals.risk.probability`), so no comparison differs."""

NewChange = tuple[str, str, int, int | None]
"""(signal, opened | resolved, epoch ms, records before it at a day close; None: at a
cancellation)."""


def held_out_marks(
    run: LogRun,
    danger: DangerSamples,
    features: FeatureSamples,
    base: Policy,
    tuned: Policy,
    off: set[str],
    keep: set[str],
) -> list[Mark] | None:
    """``tuned``'s marks on the accounts in ``keep``, as a replay of it would give them, or
    None when they cannot be had exactly from the base replay ``run`` of ``base``."""
    held = run.report.engine.get("held_by_exclusion", 0)
    if not danger_rerun.exact_for(tuned, off, held):
        return None
    if base.alerting.per_account != tuned.alerting.per_account:
        return None
    before = _records_before(features)
    again = danger_rerun.episodes(danger.by_account, run.cancels, base)
    if not danger_rerun.same_as_published(again, run.marks):
        return None
    per_account = tuned.alerting.per_account
    if per_account:
        everyone = {m.account_id for m in run.marks} | set(again)
        rolled = roll_up(run.marks, _placed(again, before), {danger_rerun.SIGNAL}, everyone)
        if _account_marks(rolled) != _account_marks(run.marks):
            return None
    new = _placed(danger_rerun.episodes(danger.by_account, run.cancels, tuned, keep), before)
    kept = "downgrade" in off
    for account, changes in risk_episodes(features, run.cancels, tuned, keep, before, kept).items():
        new.setdefault(account, []).extend(changes)
    replaced = {danger_rerun.SIGNAL, RISK, *off}
    if per_account:
        return roll_up(run.marks, new, replaced, keep)
    kept = [m for m in run.marks if m.account_id in keep and m.signal not in replaced]
    return kept + [Mark(a, s, kind, ms) for a, found in new.items() for s, kind, ms, _ in found]


def _records_before(features: FeatureSamples) -> dict[tuple[str, int], int]:
    """(account, day) -> the records published before that day close ran."""
    places = zip(features.accounts, features.days, strict=True)
    return dict(zip(places, features.records, strict=True))


def _placed(
    found: dict[str, list[Change]], before: dict[tuple[str, int], int]
) -> dict[str, list[NewChange]]:
    return {
        account: [
            (danger_rerun.SIGNAL, kind, ms,
             before[(account, ms // DAY_MS - 1)] if at_close else None)
            for kind, ms, at_close in changes
        ]
        for account, changes in found.items()
    }  # fmt: skip


def risk_episodes(
    features: FeatureSamples,
    cancels: dict[str, list[int]],
    policy: Policy,
    keep: set[str],
    before: dict[tuple[str, int], int],
    kept_contraction: bool = False,
) -> dict[str, list[NewChange]]:
    """The churn-risk detector's episode changes under ``policy``, from the sampled vectors
    (:func:`stream.core.signals.risk.churn_risk` and :func:`stream.core.episodes.step`).

    ``kept_contraction``: ``policy`` switches the ``downgrade`` detector off, which changes
    one metric (see :attr:`FeatureSamples.kept_contraction`)."""
    model = policy.risk_model
    if model is None:
        return {}
    rows: dict[str, list[int]] = {}
    for i, account in enumerate(features.accounts):
        if account in keep:
            rows.setdefault(account, []).append(i)
    width = len(features.names)
    x = np.frombuffer(features.values, dtype=np.float64).reshape(-1, width)
    if kept_contraction:
        x = x.copy()
        x[:, features.names.index("contraction")] = np.frombuffer(
            features.kept_contraction, dtype=np.float64
        )
    chosen = np.array([i for found in rows.values() for i in found], dtype=np.int64)
    probs = np.zeros(len(features.accounts))
    weights_of: dict[str, Weights] = {}
    for segment in sorted({features.segments[i] for i in chosen.tolist()}):
        weights_of[segment] = model.weights_for(segment)[0]
    signed = np.sign(x[chosen]) * np.log1p(np.abs(x[chosen]))
    segments = np.array([features.segments[i] for i in chosen.tolist()], dtype=object)
    for segment, weights in weights_of.items():
        mine = segments == segment
        coef = np.array(weights.coefficients) / np.array(weights.scales)
        offset = weights.intercept - float(
            np.sum(np.array(weights.coefficients) * np.array(weights.means) / weights.scales)
        )
        logit = np.clip(signed[mine] @ coef + offset, -30.0, 30.0)
        probs[chosen[mine]] = 1 / (1 + np.exp(-logit))
    out: dict[str, list[NewChange]] = {}
    for account, indices in rows.items():
        churns = sorted(cancels.get(account, ()))
        found: list[NewChange] = []
        state = _Episode()
        next_churn = 0
        for i in indices:
            day = features.days[i]
            at = (day + 1) * DAY_MS
            while next_churn < len(churns) and churns[next_churn] < at:
                if state.opened:
                    found.append((RISK, "resolved", churns[next_churn], None))
                    state.opened = False
                next_churn += 1
            segment, stage = features.segments[i], features.stages[i]
            p = policy.thresholds(segment, stage).churn_risk
            if not p.enabled or day - features.first_days[i] + 1 < p.min_tenure_days:
                continue
            prob = float(probs[i])
            clear_at = p.threshold * p.clear_ratio
            if abs(prob - p.threshold) <= EXACT_BAND or abs(prob - clear_at) <= EXACT_BAND:
                prob = probability(weights_of[segment], x[i].tolist())
            if prob >= p.threshold:
                if state.opened:
                    continue
                if state.open_now(at, p.per_days, p.max_opens):
                    found.append((RISK, "opened", at, before[(account, day)]))
            elif state.opened and prob < clear_at:
                found.append((RISK, "resolved", at, before[(account, day)]))
                state.opened = False
        for ms in churns[next_churn:]:
            if state.opened:
                found.append((RISK, "resolved", ms, None))
                state.opened = False
        if found:
            out[account] = found
    return out


@dataclass
class _Episode:
    """One signal's episode of one account: open or not, and the cooldown's openings."""

    opened: bool = False
    opens: list[int] = field(default_factory=list)

    def open_now(self, at: int, per_days: int, max_opens: int) -> bool:
        """Open at ``at`` unless the cooldown is spent (:func:`stream.core.episodes.step`)."""
        self.opens = [t for t in self.opens if t > at - per_days * DAY_MS]
        if len(self.opens) >= max_opens:
            return False
        self.opens.append(at)
        self.opened = True
        return True


@dataclass
class _Evaluation:
    """One evaluation of one account: where it ran, its time, what published it, and the
    signal episodes it opened or resolved."""

    key: tuple[float, int]
    ts: int
    source: str
    changes: list[tuple[str, str]] = field(default_factory=list)


def roll_up(
    marks: list[Mark],
    new: dict[str, list[NewChange]],
    replaced: set[str],
    keep: set[str],
) -> list[Mark]:
    """The marks of a replay whose ``replaced`` signals' episodes are ``new`` instead, on the
    accounts in ``keep``: the base records' other signal changes and the new changes,
    evaluation by evaluation, rolled up into one episode per account."""
    records: dict[str, dict[int, _Evaluation]] = {}
    for mark in marks:
        if mark.account_id not in keep:
            continue
        mine = records.setdefault(mark.account_id, {})
        found = mine.get(mark.record)
        if found is None:
            found = mine[mark.record] = _Evaluation((mark.record, 0), mark.ts_ms, mark.source)
        if mark.signal == ACCOUNT_AT_RISK or mark.signal in replaced:
            continue
        if mark.kind in ("opened", "resolved"):
            found.changes.append((mark.signal, mark.kind))
    out: list[Mark] = []
    for account in sorted(keep):
        mine = records.get(account, {})
        evaluations = list(mine.values())
        alone: dict[tuple[float, int], _Evaluation] = {}
        for signal, kind, ms, records_before in new.get(account, ()):
            target = _same_evaluation(evaluations, ms, records_before)
            if target is None:
                key = _standalone_key(evaluations, ms, records_before)
                target = alone.get(key)
                if target is None:
                    target = alone[key] = _Evaluation(key, ms, "")
            target.changes.append((signal, kind))
        open_now: set[str] = set()
        account_open = False
        for evaluation in sorted([*evaluations, *alone.values()], key=lambda e: e.key):
            ts = evaluation.ts
            for signal, kind in evaluation.changes:
                if kind == "opened":
                    open_now.add(signal)
                else:
                    open_now.discard(signal)
                out.append(Mark(account, signal, kind, ts, overall=False))
            if open_now and not account_open:
                out.append(Mark(account, ACCOUNT_AT_RISK, "opened", ts))
                account_open = True
            elif account_open and not open_now:
                out.append(Mark(account, ACCOUNT_AT_RISK, "resolved", ts))
                account_open = False
    return out


def _same_evaluation(
    evaluations: list[_Evaluation], ms: int, records_before: int | None
) -> _Evaluation | None:
    """The base record of the evaluation a new change belongs to, if that published one: the
    day close at ``ms`` that ran after ``records_before`` records, or the cancellation."""
    for evaluation in evaluations:
        if evaluation.ts != ms:
            continue
        if records_before is None and evaluation.source == "churned":
            return evaluation
        if (
            records_before is not None
            and evaluation.source == "day_close"
            and evaluation.key[0] >= records_before
        ):
            return evaluation
    return None


def _standalone_key(
    evaluations: list[_Evaluation], ms: int, records_before: int | None
) -> tuple[float, int]:
    """Where an evaluation the base replay published nothing for ran among the account's
    records: a day close after the records before it; a cancellation before the first record
    stamped later than it."""
    if records_before is not None:
        return (records_before - 0.5, ms)
    later = [e.key[0] for e in evaluations if e.ts > ms]
    return (min(later) - 0.5 if later else math.inf, ms)


def _account_marks(marks: list[Mark]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for mark in marks:
        if mark.signal == ACCOUNT_AT_RISK and mark.kind in ("opened", "resolved"):
            out.setdefault(mark.account_id, []).append((mark.kind, mark.ts_ms))
    return out
