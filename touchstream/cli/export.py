"""``touchstream export events``: the event log as Parquet for analysts (README: Replays).

Exit codes: 0 done (also when nothing was new); 2 bad arguments; 5 a store is
unreachable; 7 the event store is damaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from replays.export import export_events
from replays.progress import ProgressBar
from touchstream.bootstrap import opened
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="export the event log for analysis")
    esub = p.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    ev = esub.add_parser("events", help="every event as Parquet, partitioned by month; a "
                                        "second run adds only what is new")
    ev.add_argument("--format", choices=["parquet"], default="parquet")
    ev.add_argument("--out", required=True, type=Path, help="the export folder")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    ev.set_defaults(func=_events)


def _events(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"{args.out} exists and is not a folder")
    bar = ProgressBar.on_terminal("export events", quiet=args.json)
    with opened() as deps:
        source = deps.event_source()
        try:
            summary = export_events(source, args.out, progress=bar)
        finally:
            bar.done()
            source.close()
    if args.json:
        print(json.dumps({"events": summary.events, "files": summary.files,
                          "position_from": summary.position_from,
                          "position_to": summary.position_to,
                          "seconds": round(summary.seconds, 3)}, sort_keys=True))
    else:
        print(summary.line())
    return Exit.OK
