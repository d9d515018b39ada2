"""The portfolio in Redis, kept from the billing topic by the read-model feed.

One script per billing record applies the rules of :class:`stream.core.portfolio.Portfolio`
atomically: per account ``start|mrr_cents|cancelled|failed_ms`` in ``{p}:pf:acct``, per month
integer counters (money in cents; cancellations per ``reason:<group>``, classified in Python
before the script runs) in ``{p}:pf:m:{YYYY-MM}``. Each partition's last applied
offset is kept with them, so a batch delivered again after a crash is skipped record by record
(the rules alone would count a re-applied plan change twice).

What became of alerted accounts (:mod:`stream.sinks.outcomes_store`) is kept beside it: the
feed gives it the billing records through :meth:`RedisPortfolio.apply` and the alert records
through :meth:`RedisPortfolio.apply_alerts`, and each month's row carries ``alert_outcomes``
once any alert record came, as the backtests' :class:`~stream.core.portfolio.Portfolio` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from schemas.events import EventBase
from stream.core.churn_reasons import ChurnReasons
from stream.core.portfolio import (
    COUNTERS,
    INVOLUNTARY_LOOKBACK_DAYS,
    add_outcomes,
    month_of,
    monthly,
    reason_counters,
    with_outcome_months,
)
from stream.core.timeutil import DAY_MS, to_ms
from stream.sinks.outcomes_store import RedisOutcomes

_MONEY = {"new_mrr", "lost_mrr", "lost_mrr_joiners", "contraction", "expansion"}
_APPLY = """
local last = redis.call('HGET', KEYS[3], ARGV[9])
if last and tonumber(last) >= tonumber(ARGV[10]) then return 0 end
redis.call('HSET', KEYS[3], ARGV[9], ARGV[10])
local month, kind = ARGV[3], ARGV[2]
local function add(m, name, amount)
  redis.call('HINCRBY', ARGV[8] .. m, name, amount)
  redis.call('SADD', KEYS[2], m)
end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local start, mrr, cancelled, failed = '', 0, '0', ''
if raw then
  start, mrr, cancelled, failed = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  mrr = tonumber(mrr)
end
local function save()
  redis.call('HSET', KEYS[1], ARGV[1], start .. '|' .. mrr .. '|' .. cancelled .. '|' .. failed)
end
local function mrr_to(new)
  local change = new - mrr
  if change ~= 0 then
    if start < month then
      if change > 0 then add(month, 'expansion', change) else add(month, 'contraction', -change) end
    else
      add(start, 'new_mrr', change)
    end
  end
  mrr = new
end
if kind == 'subscription_started' or kind == 'subscription_renewed' then
  if not raw then
    start, mrr = ARGV[5], tonumber(ARGV[4])
    add(start, 'new_accounts', 1)
    add(start, 'new_mrr', mrr)
  else
    mrr_to(tonumber(ARGV[4]))
  end
  save()
  return 1
end
if (not raw) or cancelled == '1' then return 0 end
if kind == 'plan_changed' or kind == 'seats_changed' then
  mrr_to(tonumber(ARGV[4]))
elseif kind == 'payment_failed' then
  failed = ARGV[7]
elseif kind == 'invoice_paid' then
  failed = ''
elseif kind == 'subscription_cancelled' then
  cancelled = '1'
  local voluntary = ARGV[6]
  if voluntary == '' then
    if failed ~= '' and tonumber(ARGV[7]) - tonumber(failed) <= tonumber(ARGV[11]) then
      voluntary = '0'
    else
      voluntary = '1'
    end
  end
  add(month, ARGV[12], 1)
  add(month, ARGV[13], 1)
  if start >= month then
    add(month, 'lost_joiners', 1)
    add(month, 'lost_mrr_joiners', mrr)
  else
    add(month, 'lost', 1)
    add(month, 'lost_mrr', mrr)
    if voluntary == '1' then add(month, 'voluntary', 1) else add(month, 'involuntary', 1) end
  end
else
  return 0
end
save()
return 1
"""


def _cents(value: float | None) -> int:
    return 0 if value is None else round(float(value) * 100)


class RedisPortfolio:
    def __init__(
        self, client: redis.Redis, prefix: str, reasons: ChurnReasons | None = None
    ) -> None:
        self.r = client
        self.p = prefix
        self.reasons = reasons or ChurnReasons()
        self._apply = client.register_script(_APPLY)
        self.outcomes = RedisOutcomes(client, prefix, self.reasons)

    def apply_alerts(self, alerts: Iterable[dict]) -> None:
        """Published alert records, for the alert outcomes (idempotent, in any order)."""
        self.outcomes.apply_alerts(alerts)

    def apply(self, records: Iterable[tuple[int, int, EventBase]]) -> int:
        """(partition, offset, event) in offset order per partition; returns records applied."""
        records = list(records)
        self.outcomes.apply_billing(event for _, _, event in records)
        pipe = self.r.pipeline(transaction=False)
        p, count = self.p, 0
        for partition, offset, event in records:
            ms = to_ms(event.ts)
            kind = getattr(event, "type", "")
            month = month_of(ms)
            mrr = getattr(event, "mrr", None)
            if kind in ("plan_changed", "seats_changed"):
                mrr = getattr(event, "new_mrr", None)
                if mrr is None:
                    continue  # a seat change without a price says nothing about MRR
            started = getattr(event, "started_at", None)
            start = month_of(to_ms(started)) if started else month
            voluntary = getattr(event, "voluntary", None)
            flag = "" if voluntary is None else ("1" if voluntary else "0")
            group, managed = ("", "")
            if kind == "subscription_cancelled":
                group, managed = reason_counters(getattr(event, "reason", None), self.reasons)
            self._apply(
                keys=[f"{p}:pf:acct", f"{p}:pf:months", f"{p}:pf:off"],
                args=[event.account_id, kind, month, _cents(mrr), start, flag, ms, f"{p}:pf:m:",
                      partition, offset, INVOLUNTARY_LOOKBACK_DAYS * DAY_MS, group, managed],
                client=pipe,
            )  # fmt: skip
            count += 1
        return sum(int(x) for x in pipe.execute()) if count else 0

    def months(self) -> dict[str, dict[str, float]]:
        names = sorted(m.decode() for m in self.r.smembers(f"{self.p}:pf:months"))
        pipe = self.r.pipeline(transaction=False)
        for month in names:
            pipe.hgetall(f"{self.p}:pf:m:{month}")
        out = {}
        for month, raw in zip(names, pipe.execute(), strict=True):
            totals = dict.fromkeys(COUNTERS, 0.0)
            for key, value in raw.items():
                name = key.decode()
                totals[name] = int(value) / 100 if name in _MONEY else float(int(value))
            out[month] = totals
        return out

    def report(self, first: str | None = None, last: str | None = None) -> list[dict]:
        outcomes = self.outcomes.report()
        return add_outcomes(monthly(with_outcome_months(self.months(), outcomes), first, last),
                            outcomes)  # fmt: skip
