"""The ``touchstream`` command line: one module per command group.

Only the modules of the command asked for are imported (``COMMANDS``): importing all
of them costs every invocation the whole application (measured: ``touchstream keys
list`` 2.8 s of CPU with all, 1.2 s with its own). ``touchstream --help``, a
misspelt command and a command missing from ``COMMANDS`` build the full parser.
"""

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


# The modules that define or extend each top-level command (checked against the full
# parser by tests/unit/test_cli_lazy.py). A command left out still works, at full cost.
COMMANDS: dict[str, tuple[str, ...]] = {
    "record": ("touchstream.cli.record",),
    "customer": ("touchstream.cli.customer",),
    "events": ("touchstream.cli.events",),
    "timeline": ("touchstream.cli.timeline",),
    "triage": ("touchstream.cli.triage",),
    "demo": ("touchstream.cli.demo",),
    "keys": ("touchstream.cli.keys",),
    "serve": ("touchstream.cli.serve",),
    "import": ("touchstream.cli.imports",),
    "calls": ("touchstream.cli.calls",),
    "bench": ("touchstream.cli.bench",),
    "backfill": ("touchstream.cli.backfill",),
    "ingest": ("touchstream.cli.email",),
    "email": ("touchstream.cli.email",),
    "projections": ("touchstream.cli.projections",),
    "audit": ("touchstream.cli.audit",),
    "replay": ("touchstream.cli.replay",),
    "export": ("touchstream.cli.export",),
    "account": ("touchstream.cli.account",),
    "quality": ("touchstream.cli.quality",),
    "sales": ("touchstream.cli.sales",),
    "marketing": ("touchstream.cli.marketing",),
    "service": ("touchstream.cli.service",),
    "tasks": ("touchstream.cli.work",),
    "supervisor": ("touchstream.cli.work",),
    "commissions": ("touchstream.cli.work",),
    "dispatch": ("touchstream.cli.dispatch",),
    "call-centre": ("touchstream.cli.dispatch",),
    "analytics": ("touchstream.cli.analytics",),
    "templates": ("touchstream.cli.replies",),
    "material": ("touchstream.cli.replies",),
    "auto-replies": ("touchstream.cli.replies",),
    "territories": ("touchstream.cli.replies",),
    "kb": ("touchstream.cli.kb",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of ``command`` when ``COMMANDS`` knows it."""
    modules = COMMANDS.get(command, MODULES) if command is not None else MODULES
    parser = argparse.ArgumentParser(
        prog="touchstream",
        description="Touchstream: every customer touchpoint as an immutable event.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:  # in this order: a module may extend a command an earlier one made
        if name in modules:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    return run_guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
