"""``touchstream record KIND``: record one touchpoint (flags or JSON on stdin)."""

from __future__ import annotations

import argparse

from commands import messages as m
from touchstream.cli.common import add_model_flags, model_input, open_hub, print_recorded
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("record", help="record a touchpoint",
                            description="Record one touchpoint on its customer's stream.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, model in m.TOUCHPOINT_COMMANDS.items():
        p = kinds.add_parser(kind, help=f"record a {kind.replace('-', ' ')}")
        add_model_flags(p, model)
        p.set_defaults(func=_run, model=model)


def _run(args: argparse.Namespace) -> int:
    cmd = args.model.model_validate(model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK
