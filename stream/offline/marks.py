"""From published alert records to the marks scoring counts, in either alerting mode.

With one episode per (account, signal) a record is one mark, and it counts both for its
signal and for the all-signals figure. With one ``account_at_risk`` episode per account (the
default) the all-signals figure counts account episodes, which is what CS receives: opening
per account at risk, not per firing signal. The per-signal figures are still needed
(calibration switches off signals whose alerts did not foretell churn), and they are read
from the account episode's reasons: a signal joining the reasons is that signal's opening, a
signal leaving them (or the episode resolving with it) its resolution. Because every signal
episode's opening and resolution changes the reasons, and so is published, the per-signal
marks are the same in both modes.
"""

from __future__ import annotations

from schemas.alerts import ACCOUNT_AT_RISK, AlertEvent
from stream.core.timeutil import to_ms
from stream.offline.backtest import Mark


class AlertMarks:
    """Turns an account's records, in the order they were published, into marks.

    Holds the reasons of each open account episode (the previous record's), to see which
    signals joined or left; an episode is forgotten when it resolves.
    """

    def __init__(self) -> None:
        self._reasons: dict[str, tuple[str, ...]] = {}

    def __call__(self, alert: AlertEvent, record: int = -1) -> list[Mark]:
        """``record``: the record's number in the replay, kept on its marks."""
        account, ts = alert.account_id, to_ms(alert.ts)
        # Scoring reads an episode's end alike whether it recovered or the customer left.
        kind = "resolved" if alert.kind == "churned" else alert.kind
        source = "churned" if alert.kind == "churned" else alert.trigger
        if alert.signal != ACCOUNT_AT_RISK:
            return [Mark(account, alert.signal, kind, ts, True, record, source)]
        marks = [Mark(account, ACCOUNT_AT_RISK, kind, ts, True, record, source)]
        before = self._reasons.pop(alert.alert_id, ())
        now: tuple[str, ...] = ()
        if kind != "resolved":
            now = tuple(r.signal for r in alert.reasons)
            self._reasons[alert.alert_id] = now
        marks += [Mark(account, s, "opened", ts, False, record, source)
                  for s in now if s not in before]  # fmt: skip
        marks += [Mark(account, s, "resolved", ts, False, record, source)
                  for s in before if s not in now]  # fmt: skip
        return marks
