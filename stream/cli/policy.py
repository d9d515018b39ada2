"""Commands about the contracts rather than the data: the policy file and the alert schema."""

from __future__ import annotations

import argparse
import sys

from schemas.alerts import ALERT_SCHEMA_PATH, alert_json_schema_text
from stream.cli.args import add_command
from stream.core.policy import dump_policy_toml, load_policy
from stream.core.signals.registry import SIGNALS


def register(sub: argparse._SubParsersAction) -> None:
    _add_policy(sub)
    _add_schema(sub)


# policy show / check


def _add_policy(sub: argparse._SubParsersAction) -> None:
    pol = add_command(sub, "policy", help="print or check a policy file")
    pol.set_defaults(handler=_cmd_policy)
    pol.add_argument(
        "action",
        choices=("show", "check"),
        help="show: print the effective policy as TOML; check: validate a file",
    )
    pol.add_argument("file", nargs="?", help="policy TOML (default: the built-in policy)")


def _cmd_policy(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    if args.action == "show":
        sys.stdout.write(dump_policy_toml(policy))
    else:
        print(f"{args.file or 'built-in policy'}: ok")
    return 0


# schema


def _add_schema(sub: argparse._SubParsersAction) -> None:
    sch = add_command(sub, "schema", help="print the alert JSON Schema CS tooling codes against")
    sch.set_defaults(handler=_cmd_schema)
    sch.add_argument("--write", action="store_true", help=f"rewrite {ALERT_SCHEMA_PATH.name}")


def _cmd_schema(args: argparse.Namespace) -> int:
    text = alert_json_schema_text(SIGNALS)
    if args.write:
        ALERT_SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {ALERT_SCHEMA_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
