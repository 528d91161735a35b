"""``touchstream replay run|sla``: history replayed into an analyst's projection file, or
past cases under a new SLA policy (what-if). Neither reads nor changes a live read model.

``replay run … --segment NAME``: only the events of the segment's members (its name or
id), resolved through the segments read model on ``--until``'s day (default today); with
``--customers`` too, the customers in both.

``replay sla --policy new.toml``: past cases under the current SLA settings and a new
policy file side by side (breaches, at risk, median business minutes), replayed from
the event log into a scratch read model.

Exit codes: 0 done; 1 the file's handler failed (position and traceback on
stderr, nothing written); 2 bad arguments, a file that does not define a
projection, or a segment name several segments share; 4 no such segment; 5 a store is
unreachable; 7 the event store is damaged.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from uuid import UUID

from domain.marketing import InvalidSegmentRuleError
from projections.segments.view import SegmentsView
from replays.analyst.outputs import check_suffix
from replays.analyst.run import ReplayFilter, run_replay
from replays.progress import ProgressBar
from replays.sla import what_if
from touchstream.bootstrap import opened
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models, table, when
from touchstream.cli.service import moment
from touchstream.settings import load as load_settings
from touchstream.settings.service import read_sla_file

FIGURES = ("cases", "breached", "at_risk", "first_response_breached", "resolution_breached",
           "first_response_median_min", "resolution_median_min")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("replay", help="replay history into an analyst's projection, or "
                                      "past cases under a new SLA policy (what-if)")
    rsub = p.add_subparsers(dest="replay_command", metavar="ACTION", required=True)
    run = rsub.add_parser("run", help="run FILE.py over the event log into a .parquet, .csv "
                                      "or .sqlite file (sandboxed; never writes the stores)")
    run.add_argument("file", metavar="FILE.py")
    run.add_argument("--out", required=True, type=Path,
                     help="result.parquet | result.csv | result.sqlite (replaced when done)")
    run.add_argument("--from", dest="since", type=_day, help="events that occurred on or "
                                                              "after this date (YYYY-MM-DD)")
    run.add_argument("--until", type=_day, help="events that occurred on or before this date")
    run.add_argument("--known-at", type=_moment,
                     help="only what the hub had recorded by this time (ISO 8601)")
    run.add_argument("--customers", type=_ids, help="comma-separated customer ids")
    run.add_argument("--segment", metavar="NAME", help="only the members of this segment "
                     "(name or id) on --until's day (default today)")
    run.add_argument("--batch", type=int, default=1000, help="events per batch")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=_run)
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


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ids(text: str) -> frozenset[str]:
    try:
        return frozenset(str(UUID(part.strip())) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of customer ids: {text!r}") from exc


def _run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    check_suffix(args.out)
    if not args.out.parent.is_dir():
        raise CliError(f"{args.out.parent} is not a folder")
    try:
        source_text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    customers = args.customers
    if args.segment:
        members = _segment_members(args.segment, args.until)
        customers = members if customers is None else customers & members
    where = ReplayFilter(args.since, args.until, args.known_at, customers)
    bar = ProgressBar.on_terminal(f"replay {Path(args.file).name}", quiet=args.json)
    with opened() as deps:
        source = deps.event_source()
        try:
            summary = run_replay(source, source_text, args.file, args.out, where,
                                 batch=args.batch, progress=bar)
        finally:
            bar.done()
            source.close()
    if args.json:
        print(json.dumps({"name": summary.name, "events_read": summary.events_read,
                          "events_replayed": summary.events_given, "rows": summary.rows,
                          "position": summary.position, "seconds": round(summary.seconds, 3),
                          "out": str(summary.out)}, sort_keys=True))
    else:
        print(summary.line())
    sys.stdout.flush()
    return Exit.OK


def _segment_members(name: str, day: date | None) -> frozenset[str]:
    """The members of the segment named (or with the id) ``name`` at the end of ``day``."""
    as_of = datetime.combine(day or datetime.now(UTC).date(), time.max, tzinfo=UTC)
    sales = load_settings().sales
    with read_models(quiet=True) as store:
        view = SegmentsView(store, sales.rfm_period_days, sales.rfm_currency)
        found = [s for s in view.segments() if name in (s["name"], s["segment_id"])]
        if not found:
            raise NotFoundError(f"no segment {name!r} (`touchstream marketing segments` "
                                "lists them)")
        if len(found) > 1:
            raise CliError(f"{len(found)} segments are named {name!r}; give one's id: "
                           + ", ".join(s["segment_id"] for s in found))
        try:
            return frozenset(view.members(found[0]["rule"], as_of))
        except InvalidSegmentRuleError as exc:  # stored before the rule language changed
            raise CliError(f"segment {name!r}: {exc}") from exc


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
