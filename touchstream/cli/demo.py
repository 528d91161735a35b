"""``touchstream demo``: seed a realistic, deterministic data set through the Hub."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import datetime

from channels.blobs import BlobStore
from replays.progress import ProgressBar
from touchstream import demo, settings
from touchstream.cli.common import open_hub, print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo", help="seed demo customers and touchpoints (same seed → same events)",
        description="Seed customers with contact points and calls, emails, faxes, visits, web "
        "forms, callbacks, notes, lifecycle changes and merges over a few years. Running it "
        "again with the same flags records nothing new.")
    p.add_argument("--customers", type=int, default=demo.DEFAULT_CUSTOMERS,
                   help=f"customers (default {demo.DEFAULT_CUSTOMERS}; max {demo.MAX_CUSTOMERS})")
    p.add_argument("--years", type=int, default=3, help="years of history (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--until", default=demo.DEFAULT_UNTIL.isoformat(),
                   help="latest occurred_at, ISO 8601 with timezone "
                   f"(default {demo.DEFAULT_UNTIL.isoformat()})")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        until = datetime.fromisoformat(args.until)
    except ValueError as exc:
        raise CliError(f"--until is not an ISO 8601 timestamp: {args.until!r}") from exc
    if until.tzinfo is None:
        raise CliError("--until needs a timezone, e.g. 2026-10-01T00:00:00+00:00")
    try:
        plan = demo.demo_plan(args.customers, args.years, args.seed, until)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    conf = settings.load()
    print(f"seeding {plan.customers} customers, {len(plan.commands)} commands…", file=sys.stderr)
    bar = ProgressBar.on_terminal("demo", unit="cmd")
    with open_hub() as hub:
        try:
            report = demo.seed(hub, plan, BlobStore(conf.data_dir / "blobs"), progress=bar)
        finally:
            bar.done()
    print_json(asdict(report))
    return Exit.OK
