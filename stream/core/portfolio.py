"""The numbers CS leaders report, from the billing stream, as the domain notes define them.

* **logo churn** of a month: accounts that cancelled in it / accounts subscribed at its start
  (accounts that joined during the month are in neither count);
* **revenue churn**: MRR lost in the month (cancellations of those accounts plus contraction
  from downgrades) / MRR at its start;
* **voluntary vs involuntary**: a cancellation is involuntary when the event says so
  (``voluntary: false``) or, when it does not say, when it follows a failed payment that was
  never paid (within 30 days);
* **why**: every cancellation (joiners' too) counted by the reason group its
  ``reason`` classifies into (:mod:`stream.core.churn_reasons`), and as managed, unmanaged or
  of unknown reason;
* **purchase revenue**: what transactional and usage-billed customers spent in the
  month (orders, and invoices marked ``usage_billed``), the accounts that bought, and the
  revenue per purchasing account. Added to a month's row only when the log has purchases, so
  the subscription figures, and the rows of a log without purchases, are what they were;
* **alert outcomes**: of the alert episodes opened in the month, how many were saved, renewed,
  churned or are pending (:mod:`stream.core.alert_outcomes`), as ``alert_outcomes``; added
  only when alert records were folded in (:meth:`Portfolio.alert`).

Every update uses absolute values (an account's start month and MRR), so an event seen twice
changes nothing. The same rules run in backtests (:class:`Portfolio`) and in Redis for the API
(:mod:`stream.sinks.portfolio_store`), and the tests check that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import EventBase
from stream.core.alert_outcomes import AlertOutcomes, Episode, empty_row, month_of
from stream.core.churn_reasons import NOT_GIVEN, UNCLASSIFIED, ChurnReasons
from stream.core.timeutil import DAY_MS, to_ms

COUNTERS = ("new_accounts", "new_mrr", "lost", "lost_joiners", "voluntary", "involuntary",
            "lost_mrr", "lost_mrr_joiners", "contraction", "expansion", "managed", "unmanaged",
            "unknown_reason")  # fmt: skip

INVOLUNTARY_LOOKBACK_DAYS = 30
"""A cancellation with a failed payment this recently, never paid since, is involuntary."""


def is_involuntary(voluntary: bool | None, unpaid_failure_ms: int | None, cancel_ms: int) -> bool:
    """The event's word when it gives one; else a failed payment, never paid since, within the
    lookback before the cancellation.

    It lives here, in the pure core, because three places must agree on it: the portfolio
    (backtests and the reference fold), the Redis portfolio script the read model runs, and
    the outcomes backtests score against.
    """
    if voluntary is not None:
        return not voluntary
    return unpaid_failure_ms is not None and (
        cancel_ms - unpaid_failure_ms <= INVOLUNTARY_LOOKBACK_DAYS * DAY_MS
    )


@dataclass
class _Account:
    start_month: str
    mrr: float
    cancelled: bool = False
    failed_ms: int | None = None


REASON_PREFIX = "reason:"
"""Month counters named ``reason:<group>``: cancellations by reason group."""


def reason_counters(reason: str | None, reasons: ChurnReasons) -> tuple[str, str]:
    """The two counters a cancellation adds one to: its reason group's, and managed,
    unmanaged or unknown_reason."""
    found = reasons.classify(reason)
    kind = "unknown_reason" if found.managed is None else (
        "managed" if found.managed else "unmanaged")  # fmt: skip
    return REASON_PREFIX + found.group, kind


PURCHASE_FIELDS = ("purchase_revenue", "purchasing_accounts", "revenue_per_purchasing_account")


@dataclass
class Portfolio:
    accounts: dict[str, _Account] = field(default_factory=dict)
    months: dict[str, dict[str, float]] = field(default_factory=dict)
    reasons: ChurnReasons = field(default_factory=ChurnReasons)
    purchases: dict[str, dict[str, float]] = field(default_factory=dict)
    """Month -> account -> what it spent (orders and usage-billed invoices)."""
    purchase_ids: set[tuple[str, str]] = field(default_factory=set)
    """(account, order or invoice id) already counted: a redelivered purchase counts once."""
    outcomes: AlertOutcomes = field(init=False)
    """What became of alerted accounts (classifying cancellations by the same taxonomy)."""

    def __post_init__(self) -> None:
        self.outcomes = AlertOutcomes(self.reasons)

    def alert(self, record: dict) -> None:
        """A published alert record (as on the topic), for the alert outcomes."""
        self.outcomes.alert(record)

    def alert_episode(self, alert_id: str, episode: Episode, ts_ms: int) -> None:
        """What :meth:`alert` reads of a record, read already (the backtests keep this)."""
        self.outcomes.add(alert_id, episode, ts_ms)

    def _purchase(self, account: str, month: str, pid: str | None, amount: float) -> None:
        if pid:
            if (account, pid) in self.purchase_ids:
                return
            self.purchase_ids.add((account, pid))
        self.months.setdefault(month, dict.fromkeys(COUNTERS, 0.0))  # a month with only buyers
        spent = self.purchases.setdefault(month, {})
        spent[account] = round(spent.get(account, 0.0) + amount, 2)

    def _add(self, month: str, name: str, amount: float) -> None:
        totals = self.months.setdefault(month, dict.fromkeys(COUNTERS, 0.0))
        totals[name] = round(totals.get(name, 0.0) + amount, 2)

    def observe(self, event: EventBase) -> None:
        """A billing event."""
        self.outcomes.observe(event)
        kind = getattr(event, "type", None)
        ms = to_ms(event.ts)
        month = month_of(ms)
        acct = self.accounts.get(event.account_id)
        if kind == "order_placed" or (
            kind == "invoice_paid" and event.usage_billed and event.amount is not None  # type: ignore[attr-defined]
        ):
            pid = event.order_id if kind == "order_placed" else event.invoice_id  # type: ignore[attr-defined]
            self._purchase(event.account_id, month, pid, float(event.amount))  # type: ignore[attr-defined]
            if kind == "order_placed":
                return
        if kind in ("subscription_started", "subscription_renewed"):
            mrr = float(event.mrr)  # type: ignore[attr-defined]
            if acct is None:
                started = event.started_at  # type: ignore[attr-defined]
                start = month_of(to_ms(started)) if started else month
                self.accounts[event.account_id] = _Account(start, mrr)
                self._add(start, "new_accounts", 1)
                self._add(start, "new_mrr", mrr)
                return
            self._mrr_to(acct, mrr, month)
        elif acct is None or acct.cancelled:
            return  # billing for an account whose subscription was never seen, or ended
        elif kind == "plan_changed" or (kind == "seats_changed" and event.new_mrr is not None):
            self._mrr_to(acct, float(event.new_mrr), month)  # type: ignore[attr-defined]
        elif kind == "payment_failed":
            acct.failed_ms = ms
        elif kind == "invoice_paid":
            acct.failed_ms = None
        elif kind == "subscription_cancelled":
            acct.cancelled = True
            voluntary = event.voluntary  # type: ignore[attr-defined]
            involuntary = is_involuntary(voluntary, acct.failed_ms, ms)
            joiner = acct.start_month >= month
            self._add(month, "lost_joiners" if joiner else "lost", 1)
            self._add(month, "lost_mrr_joiners" if joiner else "lost_mrr", acct.mrr)
            if not joiner:
                self._add(month, "involuntary" if involuntary else "voluntary", 1)
            for counter in reason_counters(event.reason, self.reasons):  # type: ignore[attr-defined]
                self._add(month, counter, 1)

    def _mrr_to(self, acct: _Account, mrr: float, month: str) -> None:
        change = round(mrr - acct.mrr, 2)
        if change and acct.start_month < month:
            self._add(month, "expansion" if change > 0 else "contraction", abs(change))
        elif change:  # a joiner's first-month change only moves its starting MRR
            self._add(acct.start_month, "new_mrr", change)
        acct.mrr = mrr

    def report(self, first: str | None = None, last: str | None = None) -> list[dict]:
        outcomes = self.outcomes.report() if self.outcomes.episodes else None
        rows = monthly(with_outcome_months(self.months, outcomes), first, last)
        if self.purchases:
            for row in rows:
                row.update(purchase_figures(self.purchases.get(row["month"], {})))
        return add_outcomes(rows, outcomes)


def with_outcome_months(
    months: dict[str, dict[str, float]], outcomes: dict[str, dict] | None
) -> dict[str, dict[str, float]]:
    """``months`` with an empty month for each month alerts opened in but billing never
    touched, so every month's outcomes have a row."""
    missing = [m for m in outcomes or () if m not in months]
    return {**months, **{m: dict.fromkeys(COUNTERS, 0.0) for m in missing}} if missing else months


def add_outcomes(rows: list[dict], outcomes: dict[str, dict] | None) -> list[dict]:
    """Each row with its month's ``alert_outcomes`` when alert records were folded in."""
    if outcomes is not None:
        for row in rows:
            row["alert_outcomes"] = outcomes.get(row["month"]) or empty_row()
    return rows


def reason_group_labels(reasons: ChurnReasons) -> dict[str, str]:
    """Each reason group in words: its codes' labels (a group of several joins them)."""
    labels: dict[str, list[str]] = {}
    for code in reasons.codes:
        labels.setdefault(code.group, []).append(code.label)
    return {group: " / ".join(names) for group, names in labels.items()} | {
        UNCLASSIFIED: "Unclassified", NOT_GIVEN: "No reason given"}  # fmt: skip


def purchase_figures(spent: dict[str, float]) -> dict:
    """A month's purchase revenue, the accounts that bought, and revenue per such account."""
    revenue = round(sum(spent.values()), 2)
    buyers = len(spent)
    return {
        "purchase_revenue": revenue,
        "purchasing_accounts": buyers,
        "revenue_per_purchasing_account": round(revenue / buyers, 2) if buyers else None,
    }


def monthly(months: dict[str, dict[str, float]], first: str | None = None,
            last: str | None = None) -> list[dict]:  # fmt: skip
    """Per month from ``first`` to ``last``: logo and revenue churn with their parts."""
    accounts = mrr = 0.0
    rows = []
    for month in sorted(months):
        totals = months[month]
        if (first is None or month >= first) and (last is None or month <= last):
            lost, lost_mrr = totals["lost"], totals["lost_mrr"] + totals["contraction"]
            rows.append({
                "month": month,
                "accounts_at_start": int(accounts),
                "lost": int(lost),
                "voluntary": int(totals["voluntary"]),
                "involuntary": int(totals["involuntary"]),
                "logo_churn": round(lost / accounts, 4) if accounts else None,
                "mrr_at_start": round(mrr, 2),
                "mrr_lost": round(lost_mrr, 2),
                "revenue_churn": round(lost_mrr / mrr, 4) if mrr else None,
                "new_accounts": int(totals["new_accounts"]),
                "managed": int(totals["managed"]),
                "unmanaged": int(totals["unmanaged"]),
                "unknown_reason": int(totals["unknown_reason"]),
                "by_reason": {name.removeprefix(REASON_PREFIX): int(count)
                              for name, count in sorted(totals.items())
                              if name.startswith(REASON_PREFIX)},
            })  # fmt: skip
        accounts += totals["new_accounts"] - totals["lost"] - totals["lost_joiners"]
        mrr += (totals["new_mrr"] + totals["expansion"] - totals["contraction"]
                - totals["lost_mrr"] - totals["lost_mrr_joiners"])  # fmt: skip
    return rows
