"""Calibrating the churn-risk model: samples at day closes, a fit, a threshold, and baselines.

The flow ``calibrate`` runs (see :mod:`stream.offline.tuning`):

1. :class:`FeatureSamples`, the engine's day probe, keeps every account-day's feature vector
   (:func:`stream.core.features.feature_vector`) during the base replay;
2. :func:`learn` fits a class-weighted, L2-regularised logistic regression on the training
   accounts' rows (label: cancelled within the horizon; censored rows left out), then picks
   the alert threshold with the best F1, by the backtest's own account rules, among the
   thresholds that keep openings within the alert budget;
3. :func:`baselines` scores the two naive rules a model must beat: alert every account on its
   first day, and the bottom decile of the best single metric.

The figures come from :func:`score_openings`, the backtest's account rules, so the model, the
baselines and the replayed policy are compared on one scale.
"""

from __future__ import annotations

import copy
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from schemas.alerts import ACCOUNT_AT_RISK
from stream.core.feature_counts import MAX_TRACKED, slots_for
from stream.core.features import describe, feature_names, feature_vector
from stream.core.signals.base import Ctx
from stream.core.state import AccountState
from stream.core.timeutil import DAY_MS
from stream.offline import risk_learning as rl
from stream.offline.backtest import Mark, Scoring, score_openings
from stream.offline.outcomes import AccountOutcome
from stream.run.logio import LogReader

CLEAR_RATIO = 0.6
"""An open churn-risk episode resolves below threshold x this (hysteresis). Wide: a risk that
dips and returns is one episode, not two (0.8 re-opened 1.15 times per alerted account on the
level scenario's test seed, 0.6 1.07, for the same F1)."""
MIN_SEGMENT_CHURNERS = 20
"""A segment gets weights of its own only with this many churned training accounts."""
OWN_WEIGHTS_MARGIN = 0.02
"""...and only when they rank its churners better by this much AUC: a segment's own weights
are fitted on a fraction of the rows, so a tie means they would only add noise."""


@dataclass
class FeatureSamples:
    """The day probe: one feature vector per judged account-day, kept compactly."""

    tracked: tuple[str, ...]
    names: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    days: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))
    first_days: array = field(default_factory=lambda: array("q"))
    """The account's first day, per row (the churn-risk detector's days of data)."""
    stages: list[str] = field(default_factory=list)
    records: array = field(default_factory=lambda: array("q"))
    """Per row, how many alert records the replay had published when the day closed: where
    the close stands among the account's records (:mod:`stream.offline.policy_rerun`)."""
    published: Callable[[], int] | None = None
    """Counts the replay's records so far (set by the scoring collector); None: not counted."""
    kept_contraction: array = field(default_factory=lambda: array("d"))
    """Per row, the ``contraction`` metric as it would be had the ``downgrade`` detector never
    forgotten a contraction. The detector forgets one (it zeroes the state the metric reads)
    when it is over; switched off, it never does, so the metric then stays measured from the
    MRR before the account's first cut: ``1 - MRR / that``. A policy that switches the
    detector off is scored on this column (:mod:`stream.offline.policy_rerun`)."""
    _first_cut: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.names = feature_names(self.tracked)

    def __call__(self, acct: AccountState, ctx: Ctx) -> None:
        self.accounts.append(acct.account_id)
        self.segments.append(acct.segment_name())
        self.days.append(ctx.day)
        self.values.extend(feature_vector(acct, ctx.day, ctx.at_ms, slots_for(self.tracked)))
        self.first_days.append(acct.first_day)
        self.stages.append(ctx.stage)
        self.records.append(self.published() if self.published is not None else 0)
        first = self._first_cut.get(acct.account_id)
        if first is None and acct.contraction_ms:
            first = self._first_cut[acct.account_id] = acct.contraction_from_mrr
        kept = 0.0
        if first is not None and first > 0:
            kept = max(0.0, 1 - (acct.mrr or 0.0) / first)
        self.kept_contraction.append(kept)

    def extend(self, other: FeatureSamples) -> None:
        """Append ``other``'s rows (another job's)."""
        self.accounts.extend(other.accounts)
        self.segments.extend(other.segments)
        self.days.extend(other.days)
        self.values.extend(other.values)
        self.first_days.extend(other.first_days)
        self.stages.extend(other.stages)
        self.records.extend(other.records)
        self.kept_contraction.extend(other.kept_contraction)

    def order(self) -> list[int]:
        """Row indices grouped by account, by day within an account."""
        return sorted(range(len(self.accounts)), key=lambda i: (self.accounts[i], self.days[i]))

    def frozen(self) -> rl.Samples:
        """The rows grouped by account (stable within an account), as numpy arrays."""
        width = len(self.names)
        x = np.frombuffer(self.values, dtype=np.float64).reshape(-1, width)
        order = self.order()
        index = np.array(order, dtype=np.int64)
        return rl.Samples(
            names=self.names,
            accounts=[self.accounts[i] for i in order],
            days=np.frombuffer(self.days, dtype=np.int64)[index],
            x=x[index],
            segments=[self.segments[i] for i in order],
        )


@dataclass
class Context:
    """What scoring needs besides the rows: outcomes, the log's end, the rules."""

    outcomes: dict[str, AccountOutcome]
    log_end_ms: int
    scoring: Scoring

    def cancel_days(self) -> dict[str, int | None]:
        return {
            a: None if o.cancel_ms is None else o.cancel_ms // DAY_MS
            for a, o in self.outcomes.items()
        }

    def score(self, openings_days: dict[str, list[int]], keep: set[str]) -> dict:
        """The backtest's figures for openings given as judged days (alert at the day's end)."""
        openings = {a: [(d + 1) * DAY_MS for d in days] for a, days in openings_days.items()}
        chosen = {a: o for a, o in self.outcomes.items() if a in keep}
        return score_openings(openings, chosen, self.log_end_ms, self.scoring)


@dataclass
class Fitted:
    """One set of weights: for every account, or for one segment."""

    coefficients: list[float]
    means: list[float]
    scales: list[float]
    intercept: float
    retained_deciles: list[list[float]]

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (rl.transform(x) - np.array(self.means)) / np.array(self.scales)
        return rl.probabilities(z, np.array(self.coefficients), self.intercept)

    def as_policy(self) -> dict[str, Any]:
        return {
            "coefficients": self.coefficients,
            "means": self.means,
            "scales": self.scales,
            "intercept": self.intercept,
            "retained_deciles": self.retained_deciles,
        }


@dataclass
class Model:
    names: list[str]
    shared: Fitted
    segments: dict[str, Fitted]
    segment_notes: dict[str, str]
    threshold: float
    train: dict
    cohorts: dict[str, dict]
    dropped_rules: dict[str, str] = field(default_factory=dict)

    def scores(self, samples: rl.Samples) -> np.ndarray:
        """Each row's probability, by its segment's weights where it has its own."""
        out = self.shared.scores(samples.x)
        if self.segments and samples.segments is not None:
            for segment, fitted in self.segments.items():
                rows = np.array([s == segment for s in samples.segments], dtype=bool)
                if rows.any():
                    out[rows] = fitted.scores(samples.x[rows])
        return out


def _round(values: np.ndarray, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


def _fit(
    x: np.ndarray, z: np.ndarray, y: np.ndarray, rows: np.ndarray, l2: float,
    explained: bool = True,
) -> Fitted:  # fmt: skip
    """Weights fitted on ``rows``, their intercept moved back to an honest probability.

    Balanced class weights fit as if half the rows churned; moving the intercept by the
    prior's log-odds makes the score a probability again (what an alert prints). Only weights
    that go into the policy need the retained accounts' deciles (``explained``): the fits
    that only score rows to choose by skip them.
    """
    scaling = rl.Scaling.fit(z[rows])
    coef, intercept = rl.fit_logistic(scaling.apply(z[rows]), y[rows], l2=l2)
    intercept += rl.sigmoid_logit(float(y[rows].mean()))
    retained = rows[y[rows] == 0]
    return Fitted(
        coefficients=_round(coef),
        means=_round(scaling.means),
        scales=_round(scaling.scales),
        intercept=round(intercept, 6),
        retained_deciles=[rl.deciles(x[retained, j]) for j in range(x.shape[1])]
        if explained
        else [],
    )


def _own_weights_help(
    x: np.ndarray, z: np.ndarray, y: np.ndarray, halves: tuple[np.ndarray, np.ndarray],
    mine: np.ndarray, l2: float, shared_half: Callable[[], Fitted],
) -> tuple[bool, float, float]:  # fmt: skip
    """Whether a segment's own weights rank its churners better than the shared ones.

    Decided inside the training accounts (never on the held-out ones): both are fitted on one
    half of the training rows, split by account, and compared by AUC on the segment's rows of
    the other half. ``shared_half`` gives the shared weights of that half (one fit for every
    segment).
    """
    learn_rows, check_rows = halves
    check_mine = check_rows[mine[check_rows]]
    learn_mine = learn_rows[mine[learn_rows]]
    if not len(check_mine) or y[learn_mine].sum() == 0 or y[check_mine].sum() == 0:
        return False, 0.5, 0.5
    shared = shared_half().scores(x[check_mine])
    own = _fit(x, z, y, learn_mine, l2, explained=False).scores(x[check_mine])
    shared_auc, own_auc = rl.auc(shared, y[check_mine]), rl.auc(own, y[check_mine])
    return own_auc > shared_auc + OWN_WEIGHTS_MARGIN, own_auc, shared_auc


def _account_halves(samples: rl.Samples, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` in two halves by account: alternate accounts of each segment, in collection
    order, so every segment is split evenly however its accounts interleave."""
    parity = np.zeros(len(samples), dtype=np.int8)
    grouped = rl.AccountRows.of(samples)
    seen: Counter[str] = Counter()
    for account in grouped.order:
        first = grouped.start[account]
        segment = samples.segments[first] if samples.segments else ""
        parity[first : grouped.stop[account]] = seen[segment] % 2
        seen[segment] += 1
    return rows[parity[rows] == 0], rows[parity[rows] == 1]


Spans = dict[str, list[tuple[int, int | None]]]
"""Per account, episodes as (opened, resolved or None) in epoch milliseconds."""


def rule_spans(marks: list[Mark], keep: set[str]) -> dict[str, Spans]:
    """Per rule signal, its episodes in a replay's per-signal marks, for the accounts in
    ``keep`` (the learned model's are merged with them, as the worker merges them into one
    episode per account)."""
    open_at: dict[tuple[str, str], int] = {}
    out: dict[str, Spans] = {}
    for mark in marks:
        if mark.signal in (ACCOUNT_AT_RISK, "churn_risk") or mark.account_id not in keep:
            continue
        key = (mark.signal, mark.account_id)
        if mark.kind == "opened":
            open_at[key] = mark.ts_ms
        elif mark.kind == "resolved" and key in open_at:
            span = (open_at.pop(key), mark.ts_ms)
            out.setdefault(mark.signal, {}).setdefault(mark.account_id, []).append(span)
    for (signal, account), start in sorted(open_at.items()):
        out.setdefault(signal, {}).setdefault(account, []).append((start, None))
    return out


def _model_spans(days: dict[str, list[tuple[int, int | None]]]) -> Spans:
    """Day-close episodes in milliseconds: a day's verdict is published at its end."""
    return {
        a: [((o + 1) * DAY_MS, None if c is None else (c + 1) * DAY_MS) for o, c in spans]
        for a, spans in days.items()
    }


@dataclass
class Choice:
    threshold: float
    figures: dict
    dropped: dict[str, str]
    """Rule signals the model made redundant within the budget, and why."""


def choose_threshold(
    samples: rl.Samples,
    rows: rl.AccountRows,
    scores: np.ndarray,
    ctx: Context,
    keep: set[str],
    budget: float,
    rules: dict[str, Spans] | None = None,
    drop_rules: bool = False,
) -> Choice:
    """The threshold with the best F1 among those within the alert budget on ``keep``.

    With ``rules`` (each rule signal's episodes), the model's episodes join them into one
    episode per account, and it is that union whose F1 and volume count: the model spends
    what budget the rules leave, and gets no credit for churners they already caught. With
    ``drop_rules``, a rule signal whose alerts the union does better without (it spends
    budget on accounts the model would flag more surely) is dropped, one at a time, the one
    whose absence helps most first. When even the highest candidate breaks the budget, the
    highest is taken and its figures say so.
    """
    candidates = rl.quantile_candidates(scores[samples.rows_of(keep)])
    chosen = {a: o for a, o in ctx.outcomes.items() if a in keep}
    model_spans = [
        (t, _model_spans(rl.intervals_for(samples, rows, scores, t, t * CLEAR_RATIO, keep)))
        for t in reversed(candidates)
    ]
    rules = rules or {}

    def best_with(signals: list[str]) -> tuple[float, float, dict]:
        kept = [rules[s] for s in signals]
        best: tuple[float, float, dict] | None = None
        for threshold, spans in model_spans:
            opened = rl.merged_openings(spans, *kept)
            figures = score_openings(opened, chosen, ctx.log_end_ms, ctx.scoring)
            if (figures["per_100_accounts_per_month"] or 0.0) > budget:
                if best is None:
                    best = (-1.0, threshold, figures)
                break
            f1 = figures["f1"] or 0.0
            if best is None or f1 > best[0]:
                best = (f1, threshold, figures)
        if best is None:
            raise ValueError("no candidate threshold")
        return best

    active = sorted(rules)
    current = best_with(active)
    dropped: dict[str, str] = {}
    while drop_rules and active:
        trials = [(best_with([s for s in active if s != signal]), signal) for signal in active]
        (f1, threshold, figures), signal = max(trials, key=lambda t: (t[0][0], t[1]))
        if f1 <= current[0]:
            break
        dropped[signal] = (
            f"the learned model does better without its alerts within the budget "
            f"(F1 {f1:.2f} against {current[0]:.2f} with them, on the training accounts)"
        )
        active.remove(signal)
        current = (f1, threshold, figures)
    return Choice(current[1], current[2], dropped)


def learn(
    samples: rl.Samples,
    ctx: Context,
    train: set[str],
    budget: float,
    rules: dict[str, Spans] | None = None,
    drop_rules: bool = False,
    l2: float = 1.0,
) -> Model:
    """Fit on ``train``'s rows; choose the threshold within ``budget`` on scores it did not see.

    A threshold chosen on the rows a model was fitted on believes the model: churners score
    higher there than they will on new accounts, so alerts come out fewer and worse than
    planned. So the threshold is chosen on cross-fitted scores (each half of the training
    accounts scored by weights fitted on the other half); the weights are then refitted on all,
    and their threshold is the one that opens as many alerts on the training accounts.
    """
    rows = samples.rows_of(train)
    y, usable = rl.labels_within(
        samples, ctx.cancel_days(), ctx.log_end_ms // DAY_MS, ctx.scoring.horizon_days
    )
    fit_rows = rows[usable[rows]]
    z = rl.transform(samples.x)
    segments, notes = _segment_weights(samples, z, y, fit_rows, l2)
    unseen = np.zeros(len(samples))
    first, second = _account_halves(samples, rows)
    for learn_rows, score_rows in ((first, second), (second, first)):
        half = _refit(samples, z, y, learn_rows[usable[learn_rows]], segments, l2)
        unseen[score_rows] = half.scores(_subset(samples, score_rows))
    account_rows = rl.AccountRows.of(samples)
    choice = choose_threshold(samples, account_rows, unseen, ctx, train, budget, rules, drop_rules)
    figures = choice.figures
    model = Model(samples.names, _fit(samples.x, z, y, fit_rows, l2), segments, notes, 0, {}, {})
    model.dropped_rules = choice.dropped
    # Weights fitted on more rows score on a scale of their own, so what carries over from the
    # cross-fitted choice is its alert volume, not the probability itself.
    kept = [spans for signal, spans in (rules or {}).items() if signal not in choice.dropped]
    volume = figures["per_100_accounts_per_month"] or 0.0
    threshold = _same_volume(samples, account_rows, model.scores(samples), ctx, train, volume, kept)
    base_rate = float(y[fit_rows].mean())
    model.threshold = round(threshold, 6)
    model.train = {"base_rate": round(base_rate, 4), "rows": len(fit_rows), **figures}
    for j, name in enumerate(samples.names):
        table = rl.cohort_rates(samples.x[fit_rows, j], y[fit_rows])
        model.cohorts[name] = {
            "words": describe(name),
            "deciles": table,
            "danger_line": rl.danger_line(table, base_rate),
        }
    return model


def _same_volume(
    samples: rl.Samples,
    rows: rl.AccountRows,
    scores: np.ndarray,
    ctx: Context,
    keep: set[str],
    volume: float,
    rules: list[Spans],
) -> float:
    """The lowest threshold whose alerts (with the rules') stay within ``volume`` on ``keep``."""
    chosen = {a: o for a, o in ctx.outcomes.items() if a in keep}
    candidates = list(reversed(rl.quantile_candidates(scores[samples.rows_of(keep)])))
    found = candidates[0]
    for threshold in candidates:
        spans = rl.intervals_for(samples, rows, scores, threshold, threshold * CLEAR_RATIO, keep)
        opened = rl.merged_openings(_model_spans(spans), *rules)
        figures = score_openings(opened, chosen, ctx.log_end_ms, ctx.scoring)
        if (figures["per_100_accounts_per_month"] or 0.0) > volume:
            break
        found = threshold
    return found


def _refit(
    samples: rl.Samples, z: np.ndarray, y: np.ndarray, rows: np.ndarray,
    segments: dict[str, Fitted], l2: float,
) -> Model:  # fmt: skip
    """Shared weights, and weights for the segments that have their own, fitted on ``rows``."""
    mine = np.array(samples.segments, dtype=object) if samples.segments is not None else None
    own = {}
    for segment in segments:
        assert mine is not None
        own[segment] = _fit(samples.x, z, y, rows[mine[rows] == segment], l2, explained=False)
    shared = _fit(samples.x, z, y, rows, l2, explained=False)
    return Model(samples.names, shared, own, {}, 0.0, {}, {})


def _subset(samples: rl.Samples, rows: np.ndarray) -> rl.Samples:
    segments = None if samples.segments is None else [samples.segments[i] for i in rows.tolist()]
    accounts = [samples.accounts[i] for i in rows.tolist()]
    return rl.Samples(samples.names, accounts, samples.days[rows], samples.x[rows], segments)


def _segment_weights(
    samples: rl.Samples, z: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, l2: float
) -> tuple[dict[str, Fitted], dict[str, str]]:
    """Own weights for the segments with enough churners, where they beat the shared ones."""
    if samples.segments is None:
        return {}, {}
    names = np.array(samples.segments, dtype=object)
    halves = _account_halves(samples, fit_rows)
    own: dict[str, Fitted] = {}
    notes: dict[str, str] = {}
    fitted: list[Fitted] = []

    def shared_half() -> Fitted:
        if not fitted:
            fitted.append(_fit(samples.x, z, y, halves[0], l2, explained=False))
        return fitted[0]

    for segment in sorted(set(samples.segments)):
        mine = names == segment
        seg_rows = fit_rows[mine[fit_rows]]
        churners = len({samples.accounts[i] for i in seg_rows[y[seg_rows] > 0].tolist()})
        if churners < MIN_SEGMENT_CHURNERS:
            notes[segment] = (
                f"shared weights: {churners} churned accounts, fewer than {MIN_SEGMENT_CHURNERS}"
            )
            continue
        helps, own_auc, shared_auc = _own_weights_help(
            samples.x, z, y, halves, mine, l2, shared_half
        )
        verdict = "own weights: they rank" if helps else "shared weights: its own ranked"
        notes[segment] = (
            f"{verdict} its churners {'better' if helps else 'not clearly better'} (AUC "
            f"{own_auc:.3f} against {shared_auc:.3f} for the shared ones, within the training "
            "accounts)"
        )
        if helps:
            own[segment] = _fit(samples.x, z, y, seg_rows, l2)
    return own, notes


_Rule = tuple[float, str, float, float, bool, float]
"""A single-metric rule: train F1, metric, cut, clearing line, whether above, share alerted."""

BASELINE_SHARES = (0.02, 0.05, 0.1)
"""Shares of account-days a single-metric rule alerts on: its extreme 2%, 5% or 10% (decile)."""


def baselines(
    samples: rl.Samples, ctx: Context, train: set[str], test: set[str], budget: float
) -> dict[str, dict]:
    """The naive rules, learned (where they learn anything) on ``train``, scored on ``test``.

    Three: alert every account on its first day; the best single metric's extreme decile (the
    rule practitioners start from), whatever its volume; and the best single metric with its
    cut at 2%, 5% or 10% of account-days, among the cuts within the alert budget on ``train``.
    The last is the fair yardstick for a policy held to the budget: a decile rule that
    re-alerts every account at each renewal "wins" on account-level F1 with many times the
    alerts CS can work. :func:`fair` says which of them a verdict must beat.
    """
    day_one = {a: [ctx.outcomes[a].first_ms // DAY_MS] for a in sorted(test) if a in ctx.outcomes}
    out = {DAY_ONE: ctx.score(day_one, test)}
    rows = rl.AccountRows.of(samples)
    train_rows = samples.rows_of(train)
    decile: _Rule | None = None
    budgeted: _Rule | None = None
    for j, name in enumerate(samples.names):
        column = samples.x[:, j]
        for above in (False, True):
            for share in BASELINE_SHARES:
                cut = float(np.quantile(column[train_rows], 1 - share if above else share))
                back = float(np.quantile(column[train_rows], 1 - 2 * share if above else 2 * share))
                if back == cut:
                    continue
                opened = rl.openings_for(samples, rows, column, cut, back, train, above)
                figures = ctx.score(opened, train)
                f1 = figures["f1"] or 0.0
                if share == 0.1 and (decile is None or f1 > decile[0]):
                    decile = (f1, name, cut, back, above, share)
                if (figures["per_100_accounts_per_month"] or 0.0) > budget:
                    break  # a wider cut only alerts more
                if budgeted is None or f1 > budgeted[0]:
                    budgeted = (f1, name, cut, back, above, share)
    for found, label in ((decile, _decile_label), (budgeted, _budget_label)):
        if found is None:
            continue
        _, name, cut, back, above, share = found
        column = samples.x[:, samples.names.index(name)]
        opened = rl.openings_for(samples, rows, column, cut, back, test, above)
        out[label(name, above, share)] = ctx.score(opened, test)
    return out


DAY_ONE = "alert every account on its first day"


def _decile_label(name: str, above: bool, _: float) -> str:
    return f"{'top' if above else 'bottom'} decile of the best single metric ({describe(name)})"


_BUDGETED = "best single metric within the alert budget"


def _budget_label(name: str, above: bool, share: float) -> str:
    side = "highest" if above else "lowest"
    return f"{_BUDGETED} ({describe(name)}, {side} {share:.0%} of account-days)"


def fair(baselines: dict[str, dict], budget: float) -> dict[str, dict]:
    """The baselines a policy held to ``budget`` must beat: the first-day rule (a floor any
    detector must clear), the single metric held to the same budget, and the decile rule
    when it kept within the budget too."""
    return {
        name: figures
        for name, figures in baselines.items()
        if name == DAY_ONE
        or name.startswith(_BUDGETED)
        or (figures["per_100_accounts_per_month"] or 0.0) <= budget
    }


def top_features(path: str, limit: int = MAX_TRACKED) -> tuple[str, ...]:
    """The product features used most in the log, most used first (ties by name).

    A cheap pass: only lines that mention ``feature_used`` are parsed. The model tracks these
    by name and counts every other feature as "other".
    """
    counts: Counter[str] = Counter()
    with LogReader(path) as reader:
        for _, line in reader:
            if line is None or b"feature_used" not in line:
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            feature = event.get("feature") if isinstance(event, dict) else None
            if event.get("type") == "feature_used" and isinstance(feature, str) and feature:
                counts[feature] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(name for name, _ in ranked[:limit])


def tracking_policy_data(base: dict[str, Any], tracked: tuple[str, ...]) -> dict[str, Any]:
    """The base policy, counting ``tracked`` features so that the samples can hold them.

    The model table needs weights to validate; zero weights score nothing, and the signal is
    switched off, so this policy alerts exactly as the base one does.
    """
    names = feature_names(tracked)
    data = copy.deepcopy(base)
    data["risk_model"] = {
        "tracked_features": list(tracked),
        "features": names,
        "coefficients": [0.0] * len(names),
        "means": [0.0] * len(names),
        "scales": [1.0] * len(names),
        "intercept": 0.0,
    }
    data.setdefault("defaults", {}).setdefault("churn_risk", {})["enabled"] = False
    return data


def model_policy_data(
    base: dict[str, Any], model: Model, tracked: tuple[str, ...], horizon_days: int
) -> dict[str, Any]:
    """The base policy with the learned model switched on at its threshold."""
    data = copy.deepcopy(base)
    data["risk_model"] = {
        "tracked_features": list(tracked),
        "features": model.names,
        **model.shared.as_policy(),
        "horizon_days": horizon_days,
        "segments": {name: fitted.as_policy() for name, fitted in model.segments.items()},
    }
    risk = data.setdefault("defaults", {}).setdefault("churn_risk", {})
    risk["enabled"] = True
    risk["threshold"] = model.threshold
    halfway_to_certain = 1 - (1 - model.threshold) / 2
    risk["high_threshold"] = round(min(1.0, max(model.threshold, halfway_to_certain)), 6)
    risk["clear_ratio"] = CLEAR_RATIO
    return data
