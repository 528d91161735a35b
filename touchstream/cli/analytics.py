"""``touchstream analytics …``: the analytical figures, as tables, JSON, CSV or a chart.

Each figure is a subcommand registered by one of ``ANALYTICS_MODULES`` (a module with
``register(analytics_subparsers)``; add a figure's module with one line). They share:

* the window: ``--by day|week|month``, ``--from``/``--until`` (ISO dates, UTC, both
  included; default the 90 days up to ``--until``), ``--as-of DATE`` (the figures as
  known at the end of that day);
* the output: a table by default, ``--json`` (one document), ``--csv`` (a header row and
  the rows), and ``--plot out.png`` (a chart besides the output: ``plotting.time_series``
  or ``plotting.heatmap``).

The read models are caught up to the log head first (``reading.read_models``), like
every reading command. Bad input: a message and exit 2.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.analytics import GRANULARITIES, InvalidPeriodError, Window
from touchstream.cli.common import print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import table

# Each module defines ``register(analytics_subparsers)``; its parsers set ``func``.
ANALYTICS_MODULES: list[str] = [
    "touchstream.cli.analytics_activity",
    "touchstream.cli.analytics_value",
]
MAX_DAYS = 1100  # as the read API (read_api.analytics_common)
DEFAULT_DAYS = 90
EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)  # as the read API


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("analytics", help="analytical figures: tables, --json, --csv, --plot",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)
    asub = p.add_subparsers(dest="analytics_command", metavar="FIGURE", required=True)
    for name in ANALYTICS_MODULES:
        importlib.import_module(name).register(asub)


def add_window_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", choices=GRANULARITIES, default="day", help="period of each row")
    p.add_argument("--from", dest="start", metavar="DATE",
                   help="first day (YYYY-MM-DD, UTC); default 89 days before --until")
    p.add_argument("--until", metavar="DATE", help="last day (YYYY-MM-DD); default --as-of "
                                                   "or today")
    p.add_argument("--as-of", dest="as_of", metavar="DATE",
                   help="the figures as known at the end of this day (events recorded "
                        "later left out)")


def add_output_flags(p: argparse.ArgumentParser, plot: bool = True) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")
    if plot:
        p.add_argument("--plot", metavar="OUT.png", help="also draw a chart into this PNG")


def _date(raw: str | None, flag: str) -> date | None:
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise CliError(f"{flag}: not a date (YYYY-MM-DD): {raw!r}") from exc
    if not EARLIEST <= day <= LATEST:
        raise CliError(f"{flag}: must be between {EARLIEST} and {LATEST}")
    return day


def window_of(args: argparse.Namespace) -> Window:
    """The window the flags ask for (``CliError`` when malformed)."""
    as_of = _date(args.as_of, "--as-of")
    until = _date(args.until, "--until") or as_of or datetime.now(UTC).date()
    start = _date(args.start, "--from") or until - timedelta(days=DEFAULT_DAYS - 1)
    if (until - start).days + 1 > MAX_DAYS:
        raise CliError(f"at most {MAX_DAYS} days at once (asked {(until - start).days + 1})")
    try:
        return Window(start, until, args.by, as_of)
    except InvalidPeriodError as exc:
        raise CliError(str(exc)) from exc


def quiet(args: argparse.Namespace) -> bool:
    """No progress bar when the output is for a program."""
    return bool(args.json or args.csv)


def emit(args: argparse.Namespace, doc: Mapping[str, Any], columns: Sequence[str],
         headers: Sequence[str] | None = None, plot: Callable[[str], None] | None = None,
         rows: Sequence[Mapping[str, Any]] | None = None) -> int:
    """Print ``doc`` (``--json``), its rows (``--csv``, or a table with ``headers``), and
    draw the chart with ``plot(path)`` when ``--plot`` is given."""
    rows = doc["rows"] if rows is None else rows
    if getattr(args, "plot", None):
        if plot is None:
            raise CliError("this figure has no chart")
        plot(args.plot)
    if args.json:
        print_json(doc)
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(r.get(c)) for c in columns] for r in rows])
    else:
        print("\n".join(table(headers or [c.upper() for c in columns],
                              [[r.get(c) for c in columns] for r in rows])))
    return Exit.OK


def _cell(value: Any) -> Any:
    """A CSV cell as the read API writes it: empty for null, JSON for nested values."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def series(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], key: str, value: str
           ) -> dict[str, list[float | None]]:
    """Rows ``{period, key, value}`` as one series per ``key`` over ``labels`` (missing:
    None), for ``plotting.time_series``."""
    out: dict[str, list[float | None]] = {}
    at = {label: i for i, label in enumerate(labels)}
    for r in rows:
        line = out.setdefault(str(r[key]), [None] * len(labels))
        i = at.get(r["period"])
        if i is not None and r[value] is not None:
            line[i] = float(r[value]) + (line[i] or 0.0)
    return out
