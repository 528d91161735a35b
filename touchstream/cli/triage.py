"""``touchstream triage``: touchpoints from unknown senders, held when
``TOUCHSTREAM_UNKNOWN_CONTACTS=triage``."""

from __future__ import annotations

import argparse
from uuid import UUID

from touchstream.cli.common import open_hub, print_json, print_recorded
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("triage", help="list or assign touchpoints held for triage")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="touchpoints waiting for a customer (JSON lines)")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=_list)
    p = actions.add_parser("assign", help="record a held touchpoint on a customer")
    p.add_argument("source_key")
    p.add_argument("customer")
    p.set_defaults(func=_assign)


def _list(args: argparse.Namespace) -> int:
    with open_hub() as hub:
        for held in hub.held_touchpoints(limit=args.limit):
            print_json({"source_key": held.source_key, "contact": held.contact,
                        "kind": held.command_kind, "command": held.command})
    return Exit.OK


def _assign(args: argparse.Namespace) -> int:
    try:
        customer_id = UUID(args.customer)
    except ValueError as exc:
        raise CliError(f"not a customer id: {args.customer!r}") from exc
    with open_hub() as hub:
        print_recorded(hub.assign_held(args.source_key, customer_id))
    return Exit.OK
