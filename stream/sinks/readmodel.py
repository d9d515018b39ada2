"""The read model's rules: how alert records fold into "how is each account now".

CS tooling asks two questions the alerts topic cannot answer without reading it from the
start: how is account X now, and who is most at risk. The read model keeps the answer per
account, built from the alert records alone (each carries the account's health, segment,
plan, MRR and the episode's explanation):

* an episode's record is applied only if its ``sequence`` is higher than the one applied
  before for that ``alert_id``: a replayed or redelivered record changes nothing;
* opened and updated records put the episode among the account's open alerts, a resolved
  or churned record (the episode's last) takes it out;
* the account's snapshot (health, context, time of the latest alert) moves only forward in
  event time, so a late redelivery cannot roll it back;
* risk is ``100 - overall health``: the at-risk ranking's score;
* every applied record is also pushed on the account's episode log (newest first, the last
  :data:`EPISODE_LOG` kept), which the account page lists.

Health snapshots have rules of their own (:mod:`stream.sinks.health_model`); an account's list
row joins the two (:mod:`stream.sinks.account_rows`).

:func:`fold` is the reference implementation over plain dicts; the Redis store
(:mod:`stream.sinks.readmodel_store`) applies the same rules atomically per record, and the tests
check the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.alerts import SEVERITY_RANK
from stream.core.timeutil import to_ms
from stream.sinks.account_rows import account_row
from stream.sinks.alert_actions import acknowledged, attention, hidden
from stream.sinks.alert_actions import fold as fold_actions

ENDED = ("resolved", "churned")
"""The kinds of an episode's last record: a recovery, or a cancellation."""

SNAPSHOT_FIELDS = ("segment", "stage", "plan", "mrr", "seats", "tenure_days")
NAMED_FIELDS = ("name", "owner", "renewal_date")
"""Account facts alert records carry since schema version 3 (None in older records)."""
EPISODE_LOG = 100
"""Alert records kept per account for its page's list of episodes, newest first."""


def ts_ms(alert: dict) -> int:
    """The record's event time in epoch milliseconds: what orders an account's snapshots."""
    return to_ms(datetime.fromisoformat(alert["ts"].replace("Z", "+00:00")))


def snapshot(alert: dict) -> dict:
    """What the read model keeps about the account from its latest alert record."""
    return {
        "account_id": alert["account_id"],
        **{key: alert["account"][key] for key in SNAPSHOT_FIELDS},
        "account_name": alert["account"].get("name"),
        "owner": alert["account"].get("owner"),
        "renewal_date": alert["account"].get("renewal_date"),
        "health": alert["health"],
        "last_alert_ts": alert["ts"],
    }


def open_summary(alert: dict) -> str:
    """An open episode as the portfolio needs it: ``account|severity|mrr``."""
    mrr = alert["account"].get("mrr") or 0.0
    return f"{alert['account_id']}|{alert['severity']}|{mrr}"


def mrr_at_risk(open_summaries: Iterable[str]) -> dict:
    """Sum the MRR of accounts with open alerts, each at its worst open severity."""
    worst: dict[str, tuple[int, str, float]] = {}
    for row in open_summaries:
        account, severity, mrr = row.rsplit("|", 2)
        rank = SEVERITY_RANK.get(severity, 0)
        if account not in worst or rank > worst[account][0]:
            worst[account] = (rank, severity, float(mrr))
    by_severity = {sev: {"accounts": 0, "mrr": 0.0} for sev in SEVERITY_RANK}
    for _, severity, mrr in worst.values():
        by_severity[severity]["accounts"] += 1
        by_severity[severity]["mrr"] = round(by_severity[severity]["mrr"] + mrr, 2)
    return {
        "mrr_at_risk_by_severity": by_severity,
        "mrr_at_risk": round(sum(mrr for _, _, mrr in worst.values()), 2),
        "accounts_with_open_alerts": len(worst),
    }


def by_severity(alerts: Iterable[dict]) -> list[dict]:
    """Open alerts most severe first; among equals the newest first, then by id."""
    newest = sorted(alerts, key=lambda a: (a["ts"], a["alert_id"]), reverse=True)
    return sorted(newest, key=lambda a: -SEVERITY_RANK.get(a["severity"], 0))


def risk_of(alert: dict) -> int:
    return 100 - int(alert["health"]["overall"])


@dataclass
class ReadModel:
    """The whole read model in memory: the oracle the Redis store is tested against."""

    sequences: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, dict] = field(default_factory=dict)
    account_ts: dict[str, int] = field(default_factory=dict)
    open_alerts: dict[str, dict[str, dict]] = field(default_factory=dict)
    risk: dict[str, int] = field(default_factory=dict)
    episodes: dict[str, list[dict]] = field(default_factory=dict)
    """Per account, the applied records newest first (at most :data:`EPISODE_LOG`)."""

    actions: dict[str, dict] = field(default_factory=dict)
    """Alert actions by ``action_id`` (applied once each)."""
    now_ms: int = 0
    """Event time: the newest alert's (a test moves it for snapshots, as Redis does)."""

    def apply_action(self, action: dict) -> bool:
        if action["action_id"] in self.actions:
            return False
        self.actions[action["action_id"]] = action
        return True

    def mrr_at_risk(self) -> dict:
        episodes = (a for open_ in self.open_alerts.values() for a in open_.values())
        return mrr_at_risk(open_summary(a) for a in episodes)

    def apply(self, alert: dict) -> bool:
        alert_id, sequence = alert["alert_id"], int(alert["sequence"])
        if self.sequences.get(alert_id, -1) >= sequence:
            return False
        self.sequences[alert_id] = sequence
        account = alert["account_id"]
        log = self.episodes.setdefault(account, [])
        log.insert(0, alert)
        del log[EPISODE_LOG:]
        episodes = self.open_alerts.setdefault(account, {})
        if alert["kind"] in ENDED:
            episodes.pop(alert_id, None)
        else:
            episodes[alert_id] = alert
        when = ts_ms(alert)
        self.now_ms = max(self.now_ms, when)
        if self.account_ts.get(account, -1) <= when:
            self.account_ts[account] = when
            self.accounts[account] = snapshot(alert)
            self.risk[account] = risk_of(alert)
        return True

    def row(self, account: str, health: dict | None) -> dict | None:
        """The account's list row given its latest snapshot's list fields (or None)."""
        view = self.accounts.get(account)
        ts = self.account_ts.get(account)
        episodes = list(self.open_alerts.get(account, {}).values())
        row = account_row(view, ts, health, episodes)
        if row is None:
            return None
        states = fold_actions(a for a in self.actions.values() if a["account_id"] == account)
        row.update(attention(hidden(episodes, states), acknowledged(episodes, states),
                             self.now_ms))  # fmt: skip
        return row


def fold(alerts: Iterable[dict]) -> ReadModel:
    model = ReadModel()
    for alert in alerts:
        model.apply(alert)
    return model
