"""The ``touchstream`` command line: one module per command group."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from touchstream.cli.errors import run_guarded

# Each module defines ``register(subparsers)``; its parsers set ``func``.
MODULES = (
    "touchstream.cli.record",
    "touchstream.cli.customer",
    "touchstream.cli.events",
    "touchstream.cli.timeline",
    "touchstream.cli.triage",
    "touchstream.cli.demo",
    "touchstream.cli.keys",
    "touchstream.cli.serve",
    "touchstream.cli.imports",
    "touchstream.cli.calls",
    "touchstream.cli.bench",
    "touchstream.cli.backfill",
    "touchstream.cli.email",
    "touchstream.cli.projections",
    "touchstream.cli.audit",
    "touchstream.cli.replay",
    "touchstream.cli.export",
    "touchstream.cli.account",
    "touchstream.cli.quality",
    "touchstream.cli.sales",
    "touchstream.cli.marketing",
    "touchstream.cli.service",
    "touchstream.cli.work",
    "touchstream.cli.replies",
    "touchstream.cli.dispatch",
    "touchstream.cli.analytics",
    "touchstream.cli.kb",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="touchstream",
        description="Touchstream: every customer touchpoint as an immutable event.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
