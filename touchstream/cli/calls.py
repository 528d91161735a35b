"""``touchstream calls CUSTOMER``: each call's summary, from its logged record and its steps."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from uuid import UUID

from domain.calls import CallStep, LoggedCall, summarise_calls
from domain.customer import Customer
from touchstream.bootstrap import opened
from touchstream.cli.access import command_line, record_reads
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "calls", help="summaries of a customer's calls (state, outcome, wait, duration, agent)",
        description="Derive each call's summary from the call as logged (record call, "
                    "CDR import) and the steps the PBX/provider reported, in whatever order "
                    "they arrived; one JSON line per call, oldest first.")
    p.add_argument("customer", help="customer id")
    p.add_argument("--call", help="only this call id")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        customer_id = UUID(args.customer)
    except ValueError as exc:
        raise CliError(f"not a customer id: {args.customer!r}") from exc
    with opened() as deps:
        hub = deps.hub
        voided = set(hub.customer(customer_id).voided)  # also a clear "no customer" error
        events = [e for e in hub.stream(customer_id)
                  if isinstance(e, Customer.CallStepRecorded | Customer.CallLogged)
                  and str(e.event_id) not in voided
                  and (args.call is None or e.call_id == args.call)]
        if args.call is not None and not events:
            raise NotFoundError(f"no steps or logged call {args.call!r} recorded on this "
                                "customer")
        record_reads(deps.read_store, command_line("calls {customer}", call=args.call),
                     [str(customer_id)])
    steps = [CallStep.from_event(e) for e in events if isinstance(e, Customer.CallStepRecorded)]
    logged = [LoggedCall.from_event(e) for e in events if isinstance(e, Customer.CallLogged)]
    summaries = sorted(summarise_calls(steps, logged).values(), key=lambda s: s.started_at)
    for summary in summaries:
        print_json(asdict(summary))
    return Exit.OK
