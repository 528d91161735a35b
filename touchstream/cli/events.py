"""``touchstream events CUSTOMER``: the raw stream as JSON lines, oldest first."""

from __future__ import annotations

import argparse
from dataclasses import fields
from uuid import UUID

from touchstream.bootstrap import opened
from touchstream.cli.access import command_line, record_reads
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("events", help="print a customer's raw event stream as JSON lines")
    p.add_argument("customer", help="customer id")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        customer_id = UUID(args.customer)
    except ValueError as exc:
        raise CliError(f"not a customer id: {args.customer!r}") from exc
    with opened() as deps:
        hub = deps.hub
        hub.customer(customer_id)  # raises CustomerNotFoundError with a clear message
        record_reads(deps.read_store, command_line("events {customer}"), [str(customer_id)])
        for event in hub.stream(customer_id):
            row = {f.name: getattr(event, f.name) for f in fields(event)}  # type: ignore[arg-type]
            row["type"] = type(event).__qualname__
            row["recorded_at"] = row.pop("timestamp")
            print_json(row)
    return Exit.OK
