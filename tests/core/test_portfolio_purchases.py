"""Purchase revenue in the portfolio: additive, counted once, per purchasing account."""

from __future__ import annotations

from stream.core.portfolio import PURCHASE_FIELDS, Portfolio
from tests.helpers import at, event, model


def _fold(raws) -> Portfolio:
    folio = Portfolio()
    for raw in raws:
        folio.observe(model(raw))
    return folio


def test_orders_and_usage_billed_invoices_give_revenue_per_purchasing_account():
    raws = [
        event("order_placed", "shop-1", at(1), order_id="O-1", amount=40.0, currency="EUR"),
        event("order_placed", "shop-1", at(2), order_id="O-2", amount=60.0, currency="EUR"),
        event("order_placed", "shop-1", at(2), order_id="O-2", amount=60.0, currency="EUR"),
        event("order_placed", "shop-2", at(3), order_id="O-1", amount=20.0, currency="EUR"),
        event("subscription_started", "saas-1", at(0), plan="pro", mrr=100.0),
        event("invoice_paid", "saas-1", at(4), invoice_id="i-1", amount=250.0, usage_billed=True),
        event("invoice_paid", "saas-1", at(5), invoice_id="i-2", amount=100.0),
        event("order_placed", "shop-1", at(40), order_id="O-3", amount=10.0, currency="EUR"),
    ]
    rows = _fold(raws).report()
    jan, feb = rows
    assert (jan["month"], feb["month"]) == ("2026-01", "2026-02")
    assert jan["purchase_revenue"] == 370.0, "the redelivered O-2 and the flat invoice left out"
    assert jan["purchasing_accounts"] == 3 and jan["revenue_per_purchasing_account"] == 123.33
    assert feb["purchase_revenue"] == 10.0 and feb["purchasing_accounts"] == 1
    assert jan["new_accounts"] == 1 and feb["accounts_at_start"] == 1, "subscriptions as before"


def test_a_log_without_purchases_reports_exactly_what_it_did():
    raws = [
        event("subscription_started", "saas-1", at(0), plan="pro", mrr=100.0),
        event("invoice_paid", "saas-1", at(4), invoice_id="i-1", amount=100.0),
        event("subscription_cancelled", "saas-1", at(40)),
    ]
    rows = _fold(raws).report()
    assert rows and all(not set(PURCHASE_FIELDS) & set(row) for row in rows)
