"""Commands about the contracts rather than the data: the policy file and the alert schema."""

from __future__ import annotations

import argparse
import site
import sys
import sysconfig
from pathlib import Path

from schemas.alerts import ALERT_SCHEMA_PATH, alert_json_schema_text
from schemas.health import HEALTH_SCHEMA_PATH, health_json_schema_text
from stream.cli.args import UsageError, add_command, log
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
    sch = add_command(sub, "schema", help="print a JSON Schema CS tooling codes against")
    sch.set_defaults(handler=_cmd_schema)
    sch.add_argument(
        "--kind",
        choices=("alert", "health"),
        default="alert",
        help="alert: the alerts topic's records; health: the account-health topic's snapshots",
    )
    sch.add_argument(
        "--write",
        nargs="?",
        const=_CHECKOUT,
        metavar="FILE",
        help="write the schema to FILE (default: print it on stdout); with no FILE, regenerate "
        f"schemas/{ALERT_SCHEMA_PATH.name} (or {HEALTH_SCHEMA_PATH.name}) of the source checkout "
        "churnwatch runs from (for developers; refused when churnwatch is an installed package)",
    )


class _Checkout:
    """``--write`` without a file: the checkout's published schema (a sentinel no path equals)."""


_CHECKOUT = _Checkout()


def _cmd_schema(args: argparse.Namespace) -> int:
    if args.kind == "health":
        path, text = HEALTH_SCHEMA_PATH, health_json_schema_text()
    else:
        path, text = ALERT_SCHEMA_PATH, alert_json_schema_text(SIGNALS)
    if args.write is None or args.write == "-":
        sys.stdout.write(text)
        return 0
    target = Path(args.write) if isinstance(args.write, str) else _checkout_schema(path)
    target.write_text(text, encoding="utf-8")
    log.info("wrote %s", target)
    return 0


def _checkout_schema(path: Path) -> Path:
    """The published schema file, when churnwatch runs from a source checkout.

    In an installed package the file belongs to the installer (pip would not know it changed,
    and the next upgrade would silently undo it), so it is refused there, and the message
    says how to get the schema instead.
    """
    installed = _inside_site_packages(path)
    if installed or not (path.parents[1] / "pyproject.toml").is_file():
        raise UsageError(
            f"{path} is part of an installed churnwatch, not a source checkout; --write "
            "without a file only regenerates a checkout's schema. Give a file "
            "(churnwatch schema --write FILE) or redirect: churnwatch schema > FILE"
        )
    return path


def _inside_site_packages(path: Path) -> bool:
    resolved = path.resolve()
    roots = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
             *site.getsitepackages(), site.getusersitepackages()}  # fmt: skip
    if any(resolved.is_relative_to(Path(root).resolve()) for root in roots if root):
        return True
    return any(part in ("site-packages", "dist-packages") for part in resolved.parts)
