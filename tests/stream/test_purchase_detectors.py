"""Fading purchases on hand-built histories: purchase cadence and order value decline.

Accounts here have no subscription at all unless a test says so: transactional buyers are
judged on their own purchase history alone.
"""

from __future__ import annotations

from stream.core.timeutil import DAY_MS, to_ms
from tests.helpers import Harness, at


def only(alerts, signal):
    return [(a.kind, a.severity) for a in alerts if a.signal == signal]


def day_of(alert) -> int:
    return to_ms(alert.ts) // DAY_MS - to_ms(at(0, 0)) // DAY_MS


def order(h: Harness, day: float, amount: float = 100.0, n: list[int] = [0], **fields):  # noqa: B006
    n[0] += 1
    fields.setdefault("currency", "EUR")
    return h.send(
        "order_placed", ts=at(day), order_id=f"O-{n[0]}", amount=amount, items=2, **fields
    )


def test_purchase_cadence_opens_escalates_and_resolves_for_an_account_without_subscription():
    h = Harness()
    for day in range(0, 64, 7):  # every week, ten orders
        order(h, day)
    h.tick(at(79, 0.5))
    assert h.of("purchase_cadence") == []
    h.tick(at(82, 0.5))
    (opened,) = h.of("purchase_cadence", "opened")
    assert opened.severity == "medium" and 80 <= day_of(opened) <= 82
    assert opened.baseline == 7 and opened.threshold == 17.5
    assert "bought every 7 days" in opened.explanation and "(last: O-" in opened.explanation
    h.tick(at(93, 0.5))
    assert only(h.alerts, "purchase_cadence")[-1] == ("updated", "high")
    out = order(h, 95)
    assert only(out, "purchase_cadence") == [("resolved", "high")]
    assert "Purchasing again" in h.of("purchase_cadence", "resolved")[0].resolution
    assert h.engine.accounts["acct-1"].created_ms is None, "no subscription was needed"


def test_purchase_cadence_is_quiet_for_pauses_the_account_has_taken_before_and_few_orders():
    lumpy = Harness()
    for day in (0, 5, 10, 30, 35, 40, 60, 65, 70):  # three-week breaks are its habit
        order(lumpy, day)
    lumpy.tick(at(70 + 24, 0.5))  # 2.5x the 5-day median is 12.5, but it has paused 20 before
    assert lumpy.of("purchase_cadence") == []
    lumpy.tick(at(70 + 26, 0.5))
    assert len(lumpy.of("purchase_cadence", "opened")) == 1, "25 days: beyond 1.25x its longest"
    few = Harness()
    for day in (0, 7, 14, 21):
        order(few, day)
    few.tick(at(120, 0.5))
    assert few.of("purchase_cadence") == []


def test_order_value_decline_opens_escalates_and_resolves():
    h = Harness()
    for k, amount in enumerate([100, 110, 90, 105, 95, 100, 100, 100]):
        order(h, k * 3, amount)
    for k in range(4):
        out = order(h, 24 + k * 3, 55)
    assert only(out, "order_value_decline") == [("opened", "medium")]
    opened = h.of("order_value_decline", "opened")[0]
    assert opened.value == 55 and opened.baseline == 100
    assert "fell 45% to 55 EUR over the last 4 purchases" in opened.explanation
    for k in range(2):
        out = order(h, 36 + k * 3, 20)
    assert only(h.alerts, "order_value_decline")[-1] == ("updated", "high")
    for k in range(4):
        order(h, 42 + k * 3, 100)
    assert only(h.alerts, "order_value_decline")[-1] == ("resolved", "high")


def test_order_value_decline_is_quiet_within_the_accounts_own_spread_and_below_the_floor():
    noisy = Harness()
    for k, amount in enumerate([40, 160, 50, 150, 30, 170, 45, 155, 35, 60, 70, 50]):
        order(noisy, k * 3, amount)  # the last four average 54, the rest 99.5: spread is wide
    assert noisy.of("order_value_decline") == []
    few = Harness()
    for k, amount in enumerate([100, 100, 100, 100, 10, 10, 10, 10]):
        order(few, k * 3, amount)
    assert few.of("order_value_decline") == [], "four purchases are too few for a baseline"


def test_usage_billed_invoices_are_purchases_and_other_currencies_do_not_skew_the_average():
    h = Harness()
    h.subscribe(day=0)
    for month in range(10):
        amount = 1000.0 if month < 6 else 400.0
        h.send(
            "invoice_paid", ts=at(month * 30 + 1), invoice_id=f"inv-{month}", amount=amount,
            usage_billed=True,
        )  # fmt: skip
    (opened,) = h.of("order_value_decline", "opened")
    assert opened.value == 400 and "newest inv-9" in opened.explanation
    flat = Harness()
    flat.subscribe(day=0)
    for month in range(12):
        flat.send("invoice_paid", ts=at(month * 30 + 1), invoice_id=f"i{month}", amount=300.0)
    assert flat.engine.accounts["acct-1"].purchases is None, "a flat subscription invoice"
    mixed = Harness()
    for k in range(8):
        order(mixed, k * 3, 100)
    for k in range(4):
        order(mixed, 24 + k * 3, 30, currency="JPY")  # 30 yen is no fall in spending
    assert mixed.of("order_value_decline") == []
    assert len(mixed.engine.accounts["acct-1"].purchases.times) == 12
