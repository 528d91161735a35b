"""``touchstream tasks …`` and ``touchstream supervisor``: staff tasks, the calendar, the
work policies and the supervisor's view.

Reads: ``tasks mine --staff S``, ``tasks day --staff S [--on DATE]``, ``tasks calendar
[--team T] [--on DATE] [--week]``, ``tasks feed-link --staff S``, ``supervisor`` and
``commissions --from --to [--period]``
(table by default, ``--json``, ``--csv``); overdue and ages are judged ``--now`` (default
now). ``tasks react`` runs one pass of the work policies (follow-ups, routing). Writes:
one subcommand per work command (``tasks create-task …``; the same commands as
``POST /commands/<name>``; flags or JSON on stdin).
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from channels.web.work_commands import COMMANDS
from projections.work.view import WorkView
from read_api.work import day_bounds
from touchstream import settings as settings_mod
from touchstream.bootstrap import opened
from touchstream.cli.access import command_line, record_reads
from touchstream.cli.common import (
    add_model_flags,
    model_input,
    open_hub,
    print_json,
    print_recorded,
)
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit
from touchstream.cli.reading import read_models, table, when
from touchstream.cli.service import emit, moment

_TASK_HEADERS = ("DUE (UTC)", "OVERDUE", "KIND", "TASK", "CUSTOMER", "STATUS", "TITLE")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("tasks", help="staff tasks and appointments: mine, day, calendar, "
                                     "policies, transitions")
    tsub = p.add_subparsers(dest="tasks_command", metavar="SUBCOMMAND", required=True)
    mine = tsub.add_parser("mine", help="a staff member's open tasks, overdue first")
    mine.add_argument("--staff", required=True)
    mine.add_argument("--limit", type=int, default=100)
    _read_flags(mine)
    mine.set_defaults(func=_mine)
    day = tsub.add_parser("day", help="a staff member's day: overdue first, then the day's")
    day.add_argument("--staff", required=True)
    day.add_argument("--on", help="YYYY-MM-DD (default: today in the roster's zone)")
    _read_flags(day)
    day.set_defaults(func=_day)
    cal = tsub.add_parser("calendar", help="the team calendar for a day or a week")
    cal.add_argument("--team", help="a roster team (default: everyone)")
    cal.add_argument("--on", help="the first day, YYYY-MM-DD (default: today)")
    cal.add_argument("--week", action="store_true", help="seven days from --on")
    _read_flags(cal)
    cal.set_defaults(func=_calendar)
    link = tsub.add_parser("feed-link", help="the signed calendar feed path of a staff member")
    link.add_argument("--staff", required=True)
    link.set_defaults(func=_feed_link)
    react = tsub.add_parser("react", help="run the work policies once (follow-up tasks, "
                                          "routing of new cases and tasks)")
    react.add_argument("--json", action="store_true", help="one JSON document")
    react.set_defaults(func=_react)
    for name, (model, summary, _) in COMMANDS.items():
        cp = tsub.add_parser(name, help=summary[:1].lower() + summary[1:])
        add_model_flags(cp, model)
        cp.set_defaults(func=_command, model=model)
    s = sub.add_parser("supervisor", help="queues, unassigned items, per-agent load, oldest age")
    s.add_argument("--queue")
    s.add_argument("--limit", type=int, default=50)
    _read_flags(s)
    s.set_defaults(func=_supervisor)
    c = sub.add_parser("commissions", help="won amount × rate per owner and period")
    c.add_argument("--from", dest="start", required=True, help="RFC 3339 or YYYY-MM-DD (UTC)")
    c.add_argument("--to", dest="end", required=True, help="RFC 3339 or YYYY-MM-DD (UTC)")
    c.add_argument("--period", choices=("month", "quarter", "year"), default="month")
    c.add_argument("--owner")
    _read_flags(c)
    c.set_defaults(func=_commissions)


def _read_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", help="judge overdue and ages at this moment (RFC 3339; default now)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document")
    out.add_argument("--csv", action="store_true", help="CSV with a header row")


def _day_arg(raw: str | None, fallback: date) -> date:
    if raw is None:
        return fallback
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise CliError(f"--on: not a date (YYYY-MM-DD): {raw!r}") from exc


def _rows(tasks: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    return [(when(t["due_at"]), "yes" if t.get("overdue") else "", t["task_kind"], t["task_id"],
             t["customer_id"], t["status"], t["title"] or "-") for t in tasks]


def _mine(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be 1–1000")
    now = moment(args.now, "--now")
    with read_models(quiet=args.json or args.csv) as store:
        doc = WorkView(store).my_tasks(args.staff, now, limit=args.limit)
        record_reads(store, command_line("tasks mine", staff=args.staff),
                     [t["customer_id"] for t in doc["tasks"]])
    rows = _rows(doc["tasks"])
    lines = table(_TASK_HEADERS, rows) + [
        "", f"{doc['total']} open, {doc['overdue']} overdue as of {when(now)} UTC"]
    return emit(args, doc, _TASK_HEADERS, rows, lines)


def _zone() -> Any:
    return settings_mod.load().work.policy().roster


def _day(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    now, roster = moment(args.now, "--now"), _zone()
    tz = ZoneInfo(roster.zone)
    start, end = day_bounds(_day_arg(args.on, now.astimezone(tz).date()), 1, tz)
    with read_models(quiet=args.json or args.csv) as store:
        doc = WorkView(store).day(args.staff, start, end, now)
        record_reads(store, command_line("tasks day", staff=args.staff, on=args.on),
                     [t["customer_id"] for t in doc["tasks"]])
    return emit(args, doc, _TASK_HEADERS, _rows(doc["tasks"]))


def _calendar(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    now, roster = moment(args.now, "--now"), _zone()
    if args.team is not None and not roster.team(args.team):
        raise CliError(f"no team {args.team!r} in the roster (TOUCHSTREAM_WORK_FILE)")
    tz = ZoneInfo(roster.zone)
    start, end = day_bounds(_day_arg(args.on, now.astimezone(tz).date()),
                            7 if args.week else 1, tz)
    members = roster.team(args.team) if args.team is not None else None
    with read_models(quiet=args.json or args.csv) as store:
        doc = WorkView(store).calendar(start, end, members, now)
        tasks = [t for s in doc["staff"] for t in s["tasks"]]
        record_reads(store, command_line("tasks calendar", team=args.team, on=args.on,
                                         week=args.week), [t["customer_id"] for t in tasks])
    headers = ("STAFF", *_TASK_HEADERS)
    rows = [(t["assignee"] or "-", *r) for t, r in zip(tasks, _rows(tasks), strict=True)]
    return emit(args, doc, headers, rows)


def _supervisor(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be 1–1000")
    now = moment(args.now, "--now")
    with read_models(quiet=args.json or args.csv) as store:
        doc = WorkView(store).supervisor(now, queue=args.queue, limit=args.limit)
    headers = ("QUEUE", "OPEN", "UNASSIGNED", "OLDEST AGE S", "OLDEST UNASSIGNED AGE S")
    rows = [(q["queue"], q["open"], q["unassigned"], q["oldest_age_s"],
             q["oldest_unassigned_age_s"]) for q in doc["queues"]]
    lines = table(headers, rows) + [""] + table(
        ("AGENT", "LOAD", "TASKS", "CASES", "OVERDUE TASKS", "OLDEST AGE S"),
        [(a["agent"], a["load"], a["tasks"], a["cases"], a["overdue_tasks"], a["oldest_age_s"])
         for a in doc["agents"]]) + [""] + table(
        ("WAITING", "ID", "QUEUE", "KIND", "CHANNEL", "AGE S"),
        [(w["item_kind"], w["item_id"], w["queue"], w["kind"], w["channel"], w["age_s"])
         for w in doc["waiting"]])
    return emit(args, doc, headers, rows, lines)


def _commissions(args: argparse.Namespace) -> int:
    from projections.commissions.view import CommissionsView

    start, end = moment(args.start, "--from"), moment(args.end, "--to")
    if end <= start:
        raise CliError("--to must come after --from")
    rates = settings_mod.load().work.policy().commissions
    with read_models(quiet=args.json or args.csv) as store:
        doc = CommissionsView(store).commissions(start, end, args.period, rates, args.owner)
    headers = ("PERIOD", "OWNER", "CURRENCY", "DEALS", "WON", "RATE", "COMMISSION")
    rows = [(i["period"], i["owner"], i["currency"], i["deals"], i["won_amount"], i["rate"],
             i["commission"]) for i in doc["items"]]
    return emit(args, doc, headers, rows)


def _feed_link(args: argparse.Namespace) -> int:
    from touchstream.work_routes import feed_token

    with opened() as deps:
        secret = deps.settings.work.feed_secret
        if secret is None:
            raise CliError("calendar feeds are off: set TOUCHSTREAM_WORK_FEED_SECRET")
        base = (deps.settings.core.public_base_url or "").rstrip("/")
        print(f"{base}/calendar/{args.staff}.ics?token="
              f"{feed_token(secret.get_secret_value(), args.staff)}")
    return Exit.OK


def _react(args: argparse.Namespace) -> int:
    from touchstream.work_policies import WorkPolicies

    with opened() as deps:
        done = WorkPolicies(deps).run_once()
    doc = {"follow_ups": done.follow_ups, "routed": done.routed,
           "acknowledged": done.acknowledged, "withheld": done.withheld,
           "territory_moves": done.territory_moves, "refused": done.refused}
    if args.json:
        print_json(doc)
    else:
        print(f"{done.follow_ups} follow-up task(s) created, {done.routed} item(s) routed, "
              f"{done.acknowledged} case(s) acknowledged ({done.withheld} withheld), "
              f"{done.territory_moves} opportunit(ies) moved to a territory's new owner")
        for line in done.refused:
            print(f"refused: {line}")
    return Exit.OK


def _command(args: argparse.Namespace) -> int:
    cmd = args.model(**model_input(args, args.model))
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK
