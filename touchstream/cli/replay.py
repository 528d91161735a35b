"""``touchstream replay sla --policy new.toml``: past cases under the current SLA settings
and a new policy file side by side (breaches, at risk, median business minutes), replayed
from the event log into a scratch read model: no live read model is read or changed."""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from replays.sla import what_if
from touchstream.bootstrap import opened
from touchstream.cli.common import print_json
from touchstream.cli.exits import Exit
from touchstream.cli.reading import table, when
from touchstream.cli.service import moment
from touchstream.settings.service import read_sla_file

FIGURES = ("cases", "breached", "at_risk", "first_response_breached", "resolution_breached",
           "first_response_median_min", "resolution_median_min")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("replay", help="run past history through changed rules (what-if)")
    rsub = p.add_subparsers(dest="replay_command", metavar="SUBCOMMAND", required=True)
    s = rsub.add_parser("sla", help="past cases under the current and a new SLA policy")
    s.add_argument("--policy", required=True, type=Path,
                   help="TOML SLA settings to try (the shape of TOUCHSTREAM_SERVICE_SLA_FILE)")
    s.add_argument("--from", dest="start", help="cases opened from (default: 90 days back)")
    s.add_argument("--to", dest="end", help="cases opened before (default: now)")
    s.add_argument("--as-of", help="judge states at this moment (default now)")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    s.set_defaults(func=_sla)


def _sla(args: argparse.Namespace) -> int:
    new = read_sla_file(args.policy)
    as_of = moment(args.as_of)
    end = moment(args.end, "--to") if args.end else as_of
    start = moment(args.start, "--from") if args.start else end - timedelta(days=90)
    with opened() as deps:
        source = deps.event_source()
        try:
            result = what_if(source, deps.settings.service.sla, new, start, end, as_of)
        finally:
            source.close()
    cur, nxt = asdict(result.current), asdict(result.new)
    rows = [(name, cur[name], nxt[name]) for name in FIGURES]
    if args.json:
        print_json({"from": start.isoformat(), "to": end.isoformat(), "as_of": as_of.isoformat(),
                    "current": cur, "new": nxt, "changed": result.changed})
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(("figure", "current", "new"))
        writer.writerows(rows)
    else:
        print(f"cases opened {when(start)} – {when(end)} UTC, judged at {when(as_of)} UTC")
        print("\n".join(table(("FIGURE", "CURRENT", "NEW"), rows)))
        print(f"\n{len(result.changed)} case(s) change state")
    return Exit.OK
