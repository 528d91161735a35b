"""``touchstream dispatch …``: work-order transitions and the dispatch board;
``touchstream call-centre``: call figures per queue and hour.

Transitions take flags (or a JSON object on stdin with ``--json``), like ``record``;
``done --signature FILE`` stores the signature image in the sealed blob store first,
``--part NAME=QTY`` lists the parts used. Reads catch the read models up first and
print a table, or ``--json`` / ``--csv``. ``dispatch show`` and ``dispatch orders``
show addresses, so they are recorded in the access log before anything is printed.
Refused moves exit 3 (``Exit.CONFLICT``), an unknown work order, technician or
customer 4, bad input 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from commands import dispatch as cd
from touchstream.bootstrap import opened
from touchstream.cli.common import add_model_flags, model_input, print_recorded
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit

#: subcommand → (command model, help)
TRANSITIONS: dict[str, tuple[type[Any], str]] = {
    "technician": (cd.RegisterTechnician, "register a technician"),
    "skills": (cd.ChangeTechnicianSkills, "replace a technician's skills"),
    "create": (cd.CreateWorkOrder, "create a work order"),
    "schedule": (cd.ScheduleWorkOrder, "plan a work order's window"),
    "assign": (cd.AssignTechnician, "assign a technician"),
    "reassign": (cd.ReassignTechnician, "give the order to another technician"),
    "accept": (cd.AcceptWorkOrder, "the technician accepts"),
    "decline": (cd.DeclineWorkOrder, "the technician declines"),
    "travel": (cd.StartTravel, "the technician is on the way"),
    "arrive": (cd.RecordArrival, "the technician arrived (--occurred-at: real time)"),
    "done": (cd.RecordWorkDone, "work done (parts, minutes, signature)"),
    "close": (cd.CloseWorkOrder, "write a finished work order off"),
    "cancel": (cd.CancelWorkOrder, "cancel a work order"),
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "dispatch", help="field work orders: transitions and the board",
        description="Record a work order's transitions (flags, or --json on stdin) and read "
        "the dispatch board. Refused moves exit 3, an unknown work order, technician or "
        "customer 4, bad input 2.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, (model, help_) in TRANSITIONS.items():
        p = verbs.add_parser(verb, help=help_, description=model.__doc__)
        add_model_flags(p, model)
        if model is cd.RecordWorkDone:
            p.add_argument("--part", dest="part", action="append", metavar="NAME=QTY",
                           help="a part used and how many (repeatable)")
            p.add_argument("--signature", type=Path, metavar="FILE",
                           help="the customer's signature image (PNG or JPEG) to store")
        p.set_defaults(func=_transition, model=model)
    board = verbs.add_parser("board", help="work orders by technician and day",
                             description="Per technician and day: orders, travel windows, "
                             "planned and worked minutes, utilisation; then unassigned work.")
    board.add_argument("--from", dest="first", type=_date, help="first day (default today, UTC)")
    board.add_argument("--days", type=int, default=7, help="days shown (1–31, default 7)")
    _now_and_format(board)
    board.set_defaults(func=_board)
    late = verbs.add_parser("late", help="open work orders late or overdue at --now")
    late.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    _now_and_format(late)
    late.set_defaults(func=_late)
    show = verbs.add_parser("show", help="one work order with every transition")
    show.add_argument("work_order", help="work order id")
    _now_and_format(show)
    show.set_defaults(func=_show)
    orders = verbs.add_parser("orders", help="a customer's work orders, newest first")
    orders.add_argument("customer", help="customer id")
    orders.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    _now_and_format(orders)
    orders.set_defaults(func=_orders)

    calls = sub.add_parser("call-centre", help="calls offered, answered, abandoned, wait and "
                           "talk time per queue and hour",
                           description="Call-centre figures from the call read model (each call "
                           "summarised from its logged record and PBX steps).")
    calls.add_argument("--from", dest="start", type=_moment,
                       help="start (RFC 3339; default: the last 24 hours)")
    calls.add_argument("--to", dest="end", type=_moment, help="end, exclusive (default: now)")
    calls.add_argument("--bucket", choices=("hour", "day"), default="hour")
    calls.add_argument("--queue", help="only this queue")
    calls.add_argument("--direction", choices=("inbound", "outbound"), default="inbound")
    _format(calls)
    calls.set_defaults(func=_calls)


def _format(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    out.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _now_and_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", type=_moment, help="judge late/overdue at this moment "
                   "(RFC 3339; default: the clock)")
    _format(p)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _moment(text: str) -> datetime:
    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 date-time: {text!r}") from exc
    if found.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone offset, e.g. +00:00")
    return found


# ------------------------------------------------------------------ writes
def _transition(args: argparse.Namespace) -> int:
    data = model_input(args, args.model)
    if args.model is cd.RecordWorkDone and getattr(args, "part", None):
        data["parts"] = [_part(p) for p in args.part]
    image = _signature(args.signature) if getattr(args, "signature", None) else None
    if image is None:
        cmd = args.model.model_validate(data)  # bad input refused before opening the store
    with opened() as deps:
        if image is not None:  # stored first: the event never names a missing blob
            data["signature_ref"] = deps.blobs.put(image)
            cmd = args.model.model_validate(data)
        print_recorded(deps.hub.execute(cmd))
    return Exit.OK


def _part(text: str) -> dict[str, Any]:
    name, sep, qty = text.rpartition("=")
    if not sep or not name or not qty.isdigit():
        raise CliError(f"--part expects NAME=QTY, got {text!r}")
    return {"part": name, "quantity": int(qty)}


def _signature(path: Path) -> bytes:
    from channels.web.dispatch_commands import MAX_SIGNATURE_BYTES, SIGNATURE_TYPES

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_SIGNATURE_BYTES:
        raise CliError(f"{path} is larger than {MAX_SIGNATURE_BYTES} bytes")
    if not any(data.startswith(magic) for magic in SIGNATURE_TYPES.values()):
        raise CliError(f"{path} is not a PNG or JPEG image")
    return data


# ------------------------------------------------------------------- reads
def _views(args: argparse.Namespace, use: Callable[[Any], Any]) -> Any:
    from projections.dispatch.view import DispatchView
    from touchstream.cli.reading import read_models

    with read_models(quiet=args.quiet or args.json or args.csv) as store:
        return use(DispatchView(store))


def _now(args: argparse.Namespace) -> datetime:
    return args.now or datetime.now(UTC)


def _board(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 31:
        raise CliError(f"--days must be 1–31, got {args.days}")
    now = _now(args)
    first = args.first or now.date()
    board = _views(args, lambda v: v.board(first, args.days, now))
    rows = [(t["handle"], day["day"], o) for t in board["technicians"] for day in t["days"]
            for o in day["orders"]] + [("", (o["window_start"] or "")[:10], o)
                                       for o in board["unassigned"]]
    if args.json:
        return _print_json(board)
    if args.csv:
        return _print_csv(("technician", "day", *_ORDER_FIELDS),
                          [(h, day, *(o[f] for f in _ORDER_FIELDS)) for h, day, o in rows])
    head = (f"board from {board['from']} for {board['days']} day(s) at {board['now']}: "
            f"{board['late']} late, {board['overdue']} overdue")
    lines = [head, ""]
    lines += _table(("TECHNICIAN", "DAY", "ORDERS", "PLANNED", "WORKED", "CAPACITY", "UTIL",
                     "TRAVEL GAPS"),
                    [(t["handle"], d["day"], len(d["orders"]), d["planned_minutes"],
                      d["worked_minutes"], d["capacity_minutes"], f"{d['utilisation']:.0%}",
                      " ".join(f"{g['start'][11:16]}–{g['end'][11:16]}" for g in d["travel"])
                      or "-")
                     for t in board["technicians"] for d in t["days"] if d["orders"]])
    lines += ["", "Work orders"]
    lines += _table(("TECHNICIAN", "WORK ORDER", "STAGE", "SKILL", "WINDOW (UTC)", "FLAGS"),
                    [(h or "(unassigned)", o["work_order_id"], o["stage"], o["skill"],
                      _window(o), _flags(o)) for h, _, o in rows])
    print("\n".join(lines))
    return Exit.OK


def _late(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 200:
        raise CliError(f"--limit must be 1–200, got {args.limit}")
    now = _now(args)
    found = _views(args, lambda v: v.attention(now, args.limit))
    return _orders_out(args, found)


def _show(args: argparse.Namespace) -> int:
    from uuid import UUID

    try:
        wo = str(UUID(args.work_order))
    except ValueError as exc:
        raise CliError(f"not a work order id: {args.work_order!r}") from exc
    now = _now(args)

    def read(view: Any) -> Any:
        from touchstream.cli.access import command_line, record_reads

        found = view.work_order(wo, now)
        if found is None:
            raise NotFoundError(f"no work order {wo}")
        record_reads(view.store, command_line("dispatch show {work_order}"),
                     [found["customer_id"]])
        return found

    found = _views(args, read)
    if args.json:
        return _print_json(found)
    if args.csv:
        return _print_csv(("position", "event_id", "action", "technician_id", "occurred_at",
                           "recorded_at"), [tuple(h.values()) for h in found["history"]])
    facts = [("work order", found["work_order_id"]), ("customer", found["customer_id"]),
             ("stage", found["stage"]), ("skill", found["skill"]),
             ("technician", found["technician_id"]), ("window", _window(found)),
             ("address", found["address"]), ("summary", found["summary"]),
             ("flags", _flags(found)), ("minutes spent", found["minutes_spent"]),
             ("parts", ", ".join(f"{p['part']}×{p['quantity']}" for p in found["parts"]))]
    width = max(len(k) for k, _ in facts)
    lines = [f"{k:<{width}}  {'-' if v in (None, '') else v}" for k, v in facts]
    lines += ["", "History"]
    lines += _table(("OCCURRED (UTC)", "RECORDED (UTC)", "ACTION", "TECHNICIAN", "EVENT"),
                    [(_when(h["occurred_at"]), _when(h["recorded_at"]), h["action"],
                      h["technician_id"], h["event_id"]) for h in found["history"]])
    print("\n".join(lines))
    return Exit.OK


def _orders(args: argparse.Namespace) -> int:
    from projections.customers import group
    from projections.summary.view import SummaryView
    from touchstream.cli.access import command_line, record_reads
    from touchstream.cli.reading import customer_id, existing

    asked = customer_id(args.customer)
    if not 1 <= args.limit <= 200:
        raise CliError(f"--limit must be 1–200, got {args.limit}")
    now = _now(args)

    def read(view: Any) -> Any:
        summary = SummaryView(view.store)
        found = existing(summary.resolve(asked), asked)
        members = summary.run(lambda db, t: group(db, t.customer, found.root))
        record_reads(view.store, command_line("dispatch orders {customer}"), members)
        return view.of_customers(members, now, args.limit)

    return _orders_out(args, _views(args, read), address=True)


def _orders_out(args: argparse.Namespace, found: Sequence[dict[str, Any]],
                address: bool = False) -> int:
    fields = (*_ORDER_FIELDS, "address") if address else _ORDER_FIELDS
    if args.json:
        return _print_json(list(found))
    if args.csv:
        return _print_csv(fields, [tuple(o[f] for f in fields) for o in found])
    heads = ["WORK ORDER", "CUSTOMER", "STAGE", "TECHNICIAN", "WINDOW (UTC)", "FLAGS"]
    print("\n".join(_table((*heads, "ADDRESS") if address else heads, [
        (o["work_order_id"], o["customer_id"], o["stage"], o["technician_id"], _window(o),
         _flags(o), *([o["address"]] if address else [])) for o in found])))
    return Exit.OK


# ---------------------------------------------------------------- call centre
def _calls(args: argparse.Namespace) -> int:
    from projections.callcentre.view import CallCentreView, InvalidFiguresQueryError
    from touchstream.cli.reading import read_models

    end = args.end or datetime.now(UTC)
    start = args.start or end - timedelta(days=1)
    with read_models(quiet=args.quiet or args.json or args.csv) as store:
        try:
            rows = CallCentreView(store).figures(start, end, bucket=args.bucket,
                                                 queue=args.queue, direction=args.direction)
        except InvalidFiguresQueryError as exc:
            raise CliError(str(exc)) from exc
    if args.json:
        return _print_json(rows)
    fields = ("queue", "bucket", "offered", "answered", "abandoned", "missed", "other",
              "in_progress", "abandonment_rate", "avg_wait_s", "max_wait_s", "avg_talk_s",
              "avg_abandon_wait_s", "service_level")
    if args.csv:
        return _print_csv(fields, [tuple(r[f] for f in fields) for r in rows])
    print("\n".join(_table(
        ("QUEUE", "FROM (UTC)", "OFFERED", "ANSWERED", "ABANDONED", "MISSED", "ABANDON %",
         "AVG WAIT", "MAX WAIT", "AVG TALK", "SL 20s"),
        [(r["queue"], _when(r["bucket"]), r["offered"], r["answered"], r["abandoned"],
          r["missed"], f"{r['abandonment_rate']:.1%}", _secs(r["avg_wait_s"]),
          _secs(r["max_wait_s"]), _secs(r["avg_talk_s"]),
          "-" if r["service_level"] is None else f"{r['service_level']:.0%}")
         for r in rows])))
    return Exit.OK


# ---------------------------------------------------------------- output
_ORDER_FIELDS = ("work_order_id", "customer_id", "stage", "skill", "priority", "technician_id",
                 "window_start", "window_end", "arrived_at", "done_at", "minutes_spent",
                 "late", "overdue")


def _print_json(value: Any) -> int:
    print(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return Exit.OK


def _print_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(headers)
    out.writerows([["" if v is None else v for v in row] for row in rows])
    return Exit.OK


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    from touchstream.cli.reading import table

    return table(headers, rows) if rows else ["(none)"]


def _when(value: str | None) -> str:
    from touchstream.cli.reading import when

    return when(value)


def _window(o: dict[str, Any]) -> str:
    if not o["window_start"]:
        return "-"
    return f"{_when(o['window_start'])}–{str(o['window_end'])[11:16]}"


def _flags(o: dict[str, Any]) -> str:
    return " ".join(f for f in ("late", "overdue") if o[f]) or "-"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"
