"""``churnwatch alerts ack|snooze|dismiss|note``: a team's actions from the terminal.

They go through the API (``churnwatch serve``), not straight to Kafka, so the API's checks,
its access control and the name of the token that acted apply to them as to the page. The token
comes from ``CHURNWATCH_API_TOKEN``, never from a flag (a flag shows in ``ps`` and in shell
history); the API's address from ``--api`` or ``CHURNWATCH_API_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
import uuid
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit

import orjson

from schemas.actions import AlertAction, InvalidAction, decode_action, encode_action
from stream.cli.args import UsageError, add_command, positive_int

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
            when = p.add_mutually_exclusive_group(required=True)
            when.add_argument(
                "--until",
                metavar="YYYY-MM-DD",
                help="the day the alert comes back, after the read model's day (no default: "
                "this or --days)",
            )
            when.add_argument(
                "--days",
                type=positive_int,
                help="how many days after the read model's day it comes back (no default: "
                "this or --until)",
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


def add_export_command(al_sub: argparse._SubParsersAction) -> None:
    p = add_command(
        al_sub, "actions",
        help="write the team's actions from the alert-actions topic as JSONL (the dismissals "
        "are labels for calibrate --dismissals)",
        description="Reads the alert-actions topic (the worker's CHURNWATCH_* variables) from "
        "its first record to its end, and writes one action per line, oldest first.",
    )  # fmt: skip
    p.set_defaults(handler=_cmd_export)
    p.add_argument("-o", "--output", default="-", help="the file to write (default: stdout)")
    p.add_argument("--kind", choices=("ack", "snooze", "dismiss", "note"), action="append",
                   default=[], help="only these kinds (repeatable; default: all)")  # fmt: skip


def read_actions(settings) -> tuple[list[AlertAction], int]:
    """Every action on the topic up to its end now, and how many records were not actions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                             enable_auto_commit=False, consumer_timeout_ms=5000,
                             **settings.kafka_python_security())  # fmt: skip
    try:
        found = consumer.partitions_for_topic(settings.actions_topic) or set()
        tps = [TopicPartition(settings.actions_topic, p) for p in sorted(found)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        actions, bad = [], 0
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    try:
                        actions.append(decode_action(record.value or b""))
                    except InvalidAction:
                        bad += 1
        return actions, bad
    finally:
        consumer.close()


def _cmd_export(args: argparse.Namespace) -> int:
    from stream.kafka.settings import load_settings
    from stream.run.logio import open_output

    actions, bad = read_actions(load_settings())
    unique = {a.action_id: a for a in actions if not args.kind or a.kind in args.kind}
    with open_output(args.output) as out:
        for action in sorted(unique.values(), key=lambda a: (a.at, a.action_id)):
            out.write(encode_action(action) + b"\n")
    if bad:
        print(f"churnwatch alerts actions: skipped {bad} record(s) that are not actions",
              file=sys.stderr)  # fmt: skip
    return 0


def _cmd_action(args: argparse.Namespace) -> int:
    token = os.environ.get("CHURNWATCH_API_TOKEN", "")
    if not token:
        raise UsageError("set CHURNWATCH_API_TOKEN to one of the API's tokens (see "
                         "docs/operations.md, Access)")  # fmt: skip
    base = args.api or _api(os.environ.get("CHURNWATCH_API_URL") or DEFAULT_API)
    kind = args.action_kind
    body = {k: getattr(args, k) for k in ("until", "days", "reason", "text")
            if getattr(args, k, None)}  # fmt: skip
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
