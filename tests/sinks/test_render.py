"""The shared presentation: one alert line for tail and demo, one page shell for every page."""

from __future__ import annotations

import orjson

from stream.devtools import demo
from stream.offline.report_html import calibration_html
from stream.render.html import STYLE, page, portfolio_table
from stream.render.text import alert_line
from stream.sinks import terminal
from stream.sinks.alert_records import REQUIRED, parse
from stream.sinks.web_page import account_page, at_risk_page

ALERT = {
    "alert_id": "a-1", "sequence": 1, "kind": "opened", "account_id": "acct-7",
    "ts": "2026-02-03T04:05:06.789Z", "signal": "engagement_drop", "severity": "high",
    "health": {"overall": 40}, "account": {}, "explanation": "logins fell by 60%",
}  # fmt: skip


def test_alert_line_is_the_tail_format():
    assert alert_line(ALERT) == (
        "2026-02-03 04:05  !!  high     opened   engagement_drop      acct-7         "
        "logins fell by 60%"
    )
    resolved = {**ALERT, "kind": "resolved", "severity": "low", "resolution": "back to normal"}
    assert alert_line(resolved).endswith(
        " resolved engagement_drop      acct-7         back to normal"
    )


def test_tail_and_demo_print_the_same_line():
    assert terminal.alert_line is alert_line and demo.alert_line is alert_line


def test_parse_takes_alert_records_and_skips_anything_else():
    assert parse(orjson.dumps(ALERT)) == ALERT
    for value in (None, b"", b"not json", b"[1]", orjson.dumps({k: 1 for k in REQUIRED[:-1]})):
        assert parse(value) is None


MONTH = {"month": "2026-01", "accounts_at_start": 1200, "lost": 30, "voluntary": 20,
         "involuntary": 10, "logo_churn": 0.025, "mrr_at_start": 123456.5, "mrr_lost": 1000.0,
         "revenue_churn": None, "new_accounts": 40}  # fmt: skip


def test_portfolio_table_formats_counts_shares_and_missing_values():
    table = portfolio_table([MONTH])
    assert table.startswith('<table class="portfolio">')
    assert "<td>1,200</td>" in table and "<td>2.5%</td>" in table and "<td>–</td>" in table
    assert "<td>123,456.50</td>" in table


def test_a_month_the_log_covers_in_part_is_named_so_in_the_portfolio_table():
    partial = {**MONTH, "month": "2026-06", "partial": True, "covered_from": "2026-06-01",
               "covered_to": "2026-06-03"}  # fmt: skip
    full = {**MONTH, "partial": False, "covered_from": "2026-01-01", "covered_to": "2026-01-31"}
    table = portfolio_table([full, partial])
    assert "<td>2026-06 (partial: to Jun 3)</td>" in table
    assert "<td>2026-01</td>" in table and "2026-01 (partial" not in table


def test_page_shell_escapes_the_title_and_heads_the_body():
    html = page("A & B", "<p>x</p>")
    assert html.startswith("<!doctype html>") and html.endswith("</html>\n")
    assert "<title>A &amp; B</title>" in html and "<h1>A &amp; B</h1><p>x</p>" in html


def test_api_page_and_reports_share_the_shell_and_the_portfolio_table():
    view = {"account_id": "acct-<7>", "segment": "smb", "stage": "mature", "mrr": 10.0,
            "seats": 3, "health": {"overall": 40, "status": "at_risk"},
            "last_alert_ts": "2026-02-03T04:05:06Z", "open_alerts": []}  # fmt: skip
    portfolio = {"mrr_at_risk_by_severity": {}, "accounts_with_open_alerts": 0,
                 "mrr_at_risk": 0.0, "months": [MONTH]}  # fmt: skip
    report = {"log": "x.jsonl", "split": "all", "objective": "f1", "cells": [],
              "alert_budget_per_100_account_months": 5.0,
              "disabled_signals": {}}  # fmt: skip
    pages = [at_risk_page([view], portfolio, None), account_page(view), calibration_html(report)]
    for html in pages:
        assert f"<style>{STYLE}</style>" in html
    assert portfolio_table([MONTH], readable=True) in pages[0]
    assert "<td>Jan 2026</td>" in pages[0] and "<td>$123,456</td>" in pages[0]
    assert "<h1>Account acct-&lt;7&gt;</h1>" in pages[1]


def _account_alert() -> dict:
    """A real account episode record: a failed payment, then a detractor answer."""
    from tests.helpers import Harness, at

    h = Harness(episodes="account", defaults={"payment_failed": {"grace_days": 0}})
    h.subscribe(day=0)
    h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    (alert,) = h.send("nps_response", ts=at(2), score=2, user_id="u")
    return alert.model_dump(mode="json")


def test_account_episodes_read_well_in_the_tail_the_account_view_and_the_page():
    from stream.core.policy import load_policy

    alert = _account_alert()
    line = alert_line(alert)
    assert " updated  nps_detractor+1      acct-1 " in line, "the top reason, and how many more"
    assert line.endswith("NPS answer 2 (detractor: 0-6); and 1 more: payment_failed")
    # On an 80-column terminal the why wraps beneath the columns instead of running off.
    narrow = alert_line(alert, 80).splitlines()
    assert len(narrow) == 2 and all(len(row) <= 80 for row in narrow), narrow
    assert narrow[1] == "    NPS answer 2 (detractor: 0-6); and 1 more: payment_failed"

    # `alerts tail --signal X` keeps an account episode that lists X among its reasons.
    assert terminal.keep(alert, {"payment_failed"}, set())
    assert terminal.keep(alert, {"account_at_risk"}, {"high"})
    assert not terminal.keep(alert, {"downgrade"}, set())
    assert terminal.keep(ALERT, {"engagement_drop"}, set()), "a version 1 record still matches"

    view = {"account_id": "acct-1", "segment": "pro", "stage": "established", "plan": "pro",
            "mrr": 300.0, "seats": 10, "tenure_days": 400, "health": alert["health"],
            "last_alert_ts": alert["ts"], "open_alerts": [alert]}  # fmt: skip
    text = terminal.explain_account(view, load_policy(None))
    assert "  owner not named, renewal unknown, last activity none on record" in text
    assert "trend" not in text, "no history, no trend line"
    assert "  - account_at_risk (high), open since 2026-01-06T09:00:00Z" in text
    assert "    nps_detractor (high) since 2026-01-07T10:00:00Z:" in text
    assert "    payment_failed (medium) since 2026-01-06T09:00:00Z:" in text
    assert "      why: 1 failed payment in the last 30 days and no invoice paid since" in text
    assert text.count("next step:") == 1

    html = account_page(view)
    assert '<ul class="reasons">' in html and html.count('<li class="reason">') == 2
    assert "<b>NPS detractor</b> since 7 Jan 2026: NPS answer 2 (detractor: 0-6)" in html
    assert "<b>Account at risk</b> since 6 Jan 2026: 2 signals" in html
    assert f"<b>Next step:</b> {alert['playbook']}" in html
    assert "<li>7 Jan 2026, 10:00 UTC: NPS 2</li>" in html, "the dated facts behind it"
    # Each reason's value against its threshold, with units.
    assert (
        '<td>NPS detractor</td><td data-label="value">2 points (0–10)</td>'
        '<td data-label="threshold">6 points (0–10)</td>'
    ) in html


def test_the_account_view_names_the_owner_and_renewal_and_reads_the_trend_off_the_history():
    from stream.core.policy import load_policy

    history = [{"day": f"2026-03-{d:02d}", "health": {"overall": 100 - 2 * d}}
               for d in range(1, 32)]  # fmt: skip
    view = {"account_id": "acct-9", "account_name": "Maple Freight GmbH", "owner": "Priya Shah",
            "renewal_date": "2026-04-21", "last_activity": "2026-03-30T10:00:00Z",
            "segment": "pro", "stage": "established", "health": {
                "overall": 38, "status": "at_risk", "usage": 38, "adoption": 100,
                "billing": 100, "support": 100, "sentiment": 100},
            "as_of": "2026-04-01T00:00:00Z", "history": history, "open_alerts": []}  # fmt: skip
    text = terminal.explain_account(view, load_policy(None))
    assert text.startswith("acct-9 (Maple Freight GmbH): health 38/100 (at_risk)")
    assert "  owner Priya Shah, renewal 2026-04-21, last activity 2026-03-30T10:00:00Z" in text
    assert ("  trend: 38 on 2026-03-31, 52 7 days before, 98 30 days before "
            "(31 days of history)") in text  # fmt: skip


def test_a_per_signal_record_shows_as_before_on_the_page_and_in_the_account_view():
    from stream.core.policy import load_policy
    from tests.helpers import Harness, at

    h = Harness(episodes="signal", defaults={"payment_failed": {"grace_days": 0}})
    h.subscribe(day=0)
    (alert,) = h.send("payment_failed", ts=at(1, 9), invoice_id="i-1")
    record = alert.model_dump(mode="json")
    view = {"account_id": "acct-1", "segment": "pro", "stage": "established",
            "health": record["health"], "last_alert_ts": record["ts"],
            "open_alerts": [record]}  # fmt: skip
    html = account_page(view)
    assert '<ul class="reasons">' not in html
    assert "<b>Payment failed</b> since 6 Jan 2026: 1 failed payment" in html
    assert (
        '<td>Payment failed</td><td data-label="value">1 failed payment</td>'
        '<td data-label="threshold">1 failed payment</td>'
    ) in html
    text = terminal.explain_account(view, load_policy(None))
    assert "    failed_payments = 1.0 over 30 days, threshold 1.0" in text
    assert "    why: 1 failed payment in the last 30 days and no invoice paid since" in text


def test_the_account_page_lists_the_most_severe_alert_first():
    from tests.helpers import Harness, at

    h = Harness(episodes="signal", defaults={"payment_failed": {"grace_days": 0}})
    h.subscribe(day=0)
    (nps,) = h.send("nps_response", ts=at(1), score=2, user_id="u")
    (payment,) = h.send("payment_failed", ts=at(2, 9), invoice_id="i-1")
    alerts = [a.model_dump(mode="json") for a in (nps, payment)]
    assert [a["severity"] for a in alerts] == ["high", "medium"]
    view = {"account_id": "acct-1", "segment": "pro", "stage": "established", "seats": 1,
            "health": alerts[-1]["health"], "last_alert_ts": alerts[-1]["ts"],
            "open_alerts": alerts[::-1]}  # fmt: skip
    html = account_page(view)
    assert html.index("<b>NPS detractor</b>") < html.index("<b>Payment failed</b>")
    assert "1 seat ·" in html and "Risk: " in html
