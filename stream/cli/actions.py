"""``churnwatch alerts ack|snooze|dismiss|note``: a team's actions from the terminal.

They go through the API (``churnwatch serve``), not straight to Kafka, so the API's checks,
its access control and the name of the token that acted apply to them as to the page. The token
comes from ``CHURNWATCH_API_TOKEN``, never from a flag (a flag shows in ``ps`` and in shell
history); the API's address from ``--api`` or ``CHURNWATCH_API_URL``.
"""

from __future__ import annotations

import argparse
import os
import urllib.request
import uuid
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit

import orjson

from stream.cli.args import UsageError, add_command

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3
DEFAULT_API = "http://127.0.0.1:8080"
_PATHS = {"ack": "ack", "snooze": "snooze", "dismiss": "dismiss", "note": "notes"}
_DONE = {"ack": "acknowledged", "snooze": "snoozed", "dismiss": "dismissed",
         "note": "noted"}  # fmt: skip


def _api(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected http(s)://host:port, got {text!r}")
    return text.rstrip("/")


def add_action_commands(al_sub: argparse._SubParsersAction) -> None:
    helps = {
        "ack": "acknowledge an alert: someone is on it",
        "snooze": "take an alert off the risk list until a date (event time)",
        "dismiss": "dismiss an alert as a false alarm, with the reason (a label for calibrate)",
        "note": "add a note to an alert",
    }
    for kind, text in helps.items():
        p = add_command(al_sub, kind, help=text,
                        description=f"{text[0].upper()}{text[1:]}. Sent to the API of "
                        "`churnwatch serve` with the token in CHURNWATCH_API_TOKEN.")  # fmt: skip
        p.set_defaults(handler=_cmd_action, action_kind=kind)
        p.add_argument("alert_id", help="the alert's id (alert_id in the alert record)")
        if kind == "snooze":
            p.add_argument(
                "--until",
                required=True,
                metavar="YYYY-MM-DD",
                help="the day the alert comes back (after the read model's day)",
            )
        if kind in ("snooze", "dismiss"):
            p.add_argument("--reason", required=True, help="why, in a few words")
        if kind == "note":
            p.add_argument("--text", required=True, help="the note")
        p.add_argument(
            "--api",
            type=_api,
            default=None,
            help=f"the API (default: CHURNWATCH_API_URL, else {DEFAULT_API})",
        )
        p.add_argument("--json", action="store_true", help="print the API's answer as JSON")


def _cmd_action(args: argparse.Namespace) -> int:
    token = os.environ.get("CHURNWATCH_API_TOKEN", "")
    if not token:
        raise UsageError("set CHURNWATCH_API_TOKEN to one of the API's tokens (see "
                         "docs/operations.md, Access)")  # fmt: skip
    base = args.api or _api(os.environ.get("CHURNWATCH_API_URL") or DEFAULT_API)
    kind = args.action_kind
    body = {k: getattr(args, k) for k in ("until", "reason", "text") if getattr(args, k, None)}
    url = f"{base}/alerts/{quote(args.alert_id, safe='')}/{_PATHS[kind]}"
    request = urllib.request.Request(
        url, data=orjson.dumps(body), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Idempotency-Key": uuid.uuid4().hex},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = orjson.loads(response.read())
    except HTTPError as exc:
        try:
            message = orjson.loads(exc.read())["error"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            message = exc.reason
        print(f"churnwatch alerts {kind}: refused ({exc.code}): {message}")
        return EXIT_REFUSED
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(
            f"churnwatch alerts {kind}: cannot reach the API at {base}: {reason} "
            "(is `churnwatch serve` running? --api or CHURNWATCH_API_URL sets the address)"
        )
        return EXIT_UNREACHABLE
    if args.json:
        print(orjson.dumps(answer).decode())
        return 0
    action = answer["action"]
    extra = {"snooze": f" until {action.get('until')}", "dismiss": f": {action.get('reason')}",
             "note": ""}.get(kind, "")  # fmt: skip
    again = " (already recorded: nothing changed)" if answer.get("duplicate") else ""
    print(
        f"{_DONE[kind]} alert {action['alert_id']} of account {action['account_id']} "
        f"as {action['by']}{extra}{again}"
    )
    return 0
