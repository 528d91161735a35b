"""``touchstream demo``: seed a realistic, deterministic data set through the Hub."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import datetime

from replays.progress import ProgressBar
from touchstream.bootstrap import opened
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo", help="seed demo customers and touchpoints (same seed → same events)",
        description="Seed customers with contact points and calls, emails, faxes, visits, web "
        "forms, callbacks, notes, lifecycle changes and merges over a few years. Running it "
        "again with the same flags records nothing new.")
    # The demo data loads only when seeding (it is not on the runtime import path);
    # tests/unit/test_runtime_imports.py keeps these help texts equal to its constants.
    p.add_argument("--customers", type=int, help="customers (default 150; max 4000)")
    p.add_argument("--years", type=int, default=3, help="years of history (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--until", help="latest occurred_at, ISO 8601 with timezone "
                   "(default 2026-10-01T00:00:00+00:00)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from touchstream import demo

    until_text = args.until or demo.DEFAULT_UNTIL.isoformat()
    customers = demo.DEFAULT_CUSTOMERS if args.customers is None else args.customers
    try:
        until = datetime.fromisoformat(until_text)
    except ValueError as exc:
        raise CliError(f"--until is not an ISO 8601 timestamp: {until_text!r}") from exc
    if until.tzinfo is None:
        raise CliError("--until needs a timezone, e.g. 2026-10-01T00:00:00+00:00")
    try:
        plan = demo.demo_plan(customers, args.years, args.seed, until)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"seeding {plan.customers} customers, {len(plan.commands)} commands…", file=sys.stderr)
    bar = ProgressBar.on_terminal("demo", unit="cmd")
    with opened() as deps:
        try:
            report = demo.seed(deps.hub, plan, deps.blobs, progress=bar)
        finally:
            bar.done()
        from touchstream.demo_replies import after_seed

        replies = after_seed(deps, until)
    print_json({**asdict(report), "replies": replies})
    return Exit.OK
