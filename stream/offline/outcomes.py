"""What actually happened to each account: the truth alerts are scored against.

By default the truth comes from the log itself: its ``subscription_cancelled`` events are the
churn labels, so a backtest needs nothing but the event log a company already has. A labels
file (JSONL, one account per line, the simulator's ``--labels`` format) overrides them, for
companies whose cancellations live in another system.

The observer also keeps each account's exposure (from its first event to its cancellation or
the log's end), which alert volume per account-month is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from schemas.events import EventBase
from stream.core.portfolio import is_involuntary
from stream.core.timeutil import to_ms


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the line and the problem."""


@dataclass
class AccountOutcome:
    """What became of one account in the log: when it was first seen and when it cancelled.

    Named apart from :class:`stream.run.live.Outcome` (what one Kafka record asks the worker
    to do), which is a different thing entirely.
    """

    account_id: str
    first_ms: int
    cancel_ms: int | None = None
    involuntary: bool | None = None
    last_failed_ms: int | None = None  # an unpaid failed payment, for the involuntary rule
    segment: str | None = None  # the last one its events named
    plan: str | None = None
    mrr: float | None = None  # the last one its billing events gave before any cancellation
    reason: str | None = None  # the cancellation's reason, as the event gave it
    reason_group: str | None = None  # its group in the policy's taxonomy (set once classified)

    @property
    def segment_name(self) -> str:
        """The segment the engine chooses the account's thresholds by: segment, else plan."""
        return self.segment or self.plan or "default"

    @property
    def churned(self) -> bool:
        return self.cancel_ms is not None

    def end_ms(self, log_end_ms: int) -> int:
        """Where this account stops being observable: its cancellation or the log's end."""
        return self.cancel_ms if self.cancel_ms is not None else log_end_ms


class OutcomeObserver:
    """Collects outcomes and exposure from the events of a replay, one call per event."""

    def __init__(self) -> None:
        self.accounts: dict[str, AccountOutcome] = {}
        self.start_ms: int | None = None
        self.end_ms = 0

    def __call__(self, event: EventBase) -> None:
        ms = to_ms(event.ts)
        if self.start_ms is None or ms < self.start_ms:
            self.start_ms = ms
        self.end_ms = max(self.end_ms, ms)
        out = self.accounts.get(event.account_id)
        if out is None:
            out = self.accounts[event.account_id] = AccountOutcome(event.account_id, ms)
        elif ms < out.first_ms:
            out.first_ms = ms
        kind = event.type  # type: ignore[attr-defined]
        out.segment = event.segment or out.segment
        out.plan = (event.new_plan if kind == "plan_changed" else event.plan) or out.plan  # type: ignore[attr-defined]
        # The fields, not getattr: on a model without the field, pydantic's __getattr__ raises
        # AttributeError in Python, which cost a sixth of calibrate's replays.
        fields = event.__dict__
        mrr = fields.get("mrr")
        if mrr is None:
            mrr = fields.get("new_mrr")
        if mrr is not None and out.cancel_ms is None:
            out.mrr = float(mrr)
        if kind == "payment_failed":
            out.last_failed_ms = ms
        elif kind == "invoice_paid":
            out.last_failed_ms = None
        elif kind == "subscription_cancelled" and out.cancel_ms is None:
            out.cancel_ms = ms
            voluntary = event.voluntary  # type: ignore[attr-defined]
            out.involuntary = is_involuntary(voluntary, out.last_failed_ms, ms)
            out.reason = fields.get("reason")


def apply_labels_file(observer: OutcomeObserver, text: bytes, source: str) -> int:
    """Replace the log's cancellations with a labels file's; returns labelled accounts seen.

    Each line is an object with ``account_id`` and either ``cancel_ts`` (an ISO time, or null
    for an account that stayed) or ``outcome`` of ``churned``/``retained`` with ``cancel_ts``.
    Accounts the file does not name keep no churn label; accounts absent from the log are
    ignored (they were never observed, so no alert could have caught them).
    """
    for out in observer.accounts.values():
        out.cancel_ms = None
        out.involuntary = None
        out.reason = out.reason_group = None
    seen = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise LabelsError(f"{where}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("account_id"), str):
            raise LabelsError(f"{where}: expected an object with a string account_id")
        cancel = row.get("cancel_ts")
        outcome = row.get("outcome", "churned" if cancel else "retained")
        if outcome not in ("churned", "retained"):
            raise LabelsError(f"{where}: outcome must be churned or retained, got {outcome!r}")
        if outcome == "churned" and not isinstance(cancel, str):
            raise LabelsError(f"{where}: a churned account needs cancel_ts")
        out = observer.accounts.get(row["account_id"])
        if out is None:
            continue
        seen += 1
        if outcome == "churned":
            try:
                when = datetime.fromisoformat(cancel.replace("Z", "+00:00"))
            except ValueError:
                raise LabelsError(f"{where}: cancel_ts is not an ISO time: {cancel!r}") from None
            if when.tzinfo is None:
                raise LabelsError(f"{where}: cancel_ts needs a timezone: {cancel!r}")
            out.cancel_ms = to_ms(when)
            kind = row.get("churn_type")
            out.involuntary = None if kind is None else kind == "involuntary"
    return seen
