"""``touchstream sales …``: the pipeline, forecast, stages, revenue, RFM, a customer's
opportunities and orders (the read models, brought up to date first), the events behind a
figure, and the sales commands (``touchstream sales open-opportunity --customer-id …``).

Figures print as a table by default, ``--json`` (one JSON object) or ``--csv`` (a header
row, then one row per item). Errors and exit codes are the CLI's (touchstream.cli.exits).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from channels.web.sales_commands import COMMANDS
from domain.sales import InvalidMoneyError, currency_code
from projections.lifecycle.view import LifecycleView
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from projections.store import ReadStore
from projections.summary.view import SummaryView
from touchstream import settings as settings_mod
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
from touchstream.cli.reading import customer_id, existing, read_models, table

Reader = Callable[[argparse.Namespace, ReadStore], tuple[Any, list[dict[str, Any]]]]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("sales", help="pipeline, forecast, revenue, RFM; sales commands",
                            description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = _reader(actions, "pipeline", "open opportunities by stage, owner or close month",
                _pipeline)
    p.add_argument("--by", choices=["stage", "owner", "close_month"], default="stage")
    p = _reader(actions, "forecast", "weighted forecast per close month and owner", _forecast)
    p.add_argument("--owner")
    p.add_argument("--from-month", type=_month, metavar="YYYY-MM")
    p.add_argument("--to-month", type=_month, metavar="YYYY-MM")
    _reader(actions, "stages", "stage conversion, days in stage, win rate, sales cycle",
            _stages)
    p = _reader(actions, "revenue", "revenue, orders, AOV and returns per month", _revenue)
    p.add_argument("--from-month", type=_month, metavar="YYYY-MM")
    p.add_argument("--to-month", type=_month, metavar="YYYY-MM")
    p = _reader(actions, "rfm", "RFM scores per customer as of a day", _rfm)
    p.add_argument("--as-of", type=_day, metavar="YYYY-MM-DD", help="default: today (UTC)")
    p.add_argument("--period-days", type=int, help="default TOUCHSTREAM_SALES_RFM_PERIOD_DAYS")
    p.add_argument("--currency", type=_currency, help="default TOUCHSTREAM_SALES_RFM_CURRENCY")
    p = _reader(actions, "lifecycle", "customers per lifecycle stage as of a day, flows per "
                "month", _lifecycle)
    p.add_argument("--as-of", type=_day, metavar="YYYY-MM-DD", help="default: today (UTC)")
    p.add_argument("--from-month", type=_month, metavar="YYYY-MM")
    p.add_argument("--to-month", type=_month, metavar="YYYY-MM")
    p = _reader(actions, "opportunities", "a customer's opportunities", _opportunities)
    p.add_argument("customer")
    p = _reader(actions, "orders", "a customer's orders", _orders)
    p.add_argument("customer")
    p = _reader(actions, "events", "the events behind a pipeline figure (drill-down)",
                _events)
    p.add_argument("--status", choices=["open", "won", "lost"], default="open")
    p.add_argument("--stage")
    p.add_argument("--owner")
    p.add_argument("--close-month", type=_month, metavar="YYYY-MM")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--after", type=int, default=0, help="a previous page's next_after")

    for name, (model, summary, _) in COMMANDS.items():
        p = actions.add_parser(name, help=summary.lower(), description=model.__doc__)
        add_model_flags(p, model)
        p.set_defaults(func=_command, model=model)


def _reader(actions: Any, name: str, help_: str, read: Reader) -> argparse.ArgumentParser:
    p = actions.add_parser(name, help=help_, description=help_)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--csv", action="store_true", help="print CSV (header row first)")
    p.set_defaults(func=lambda args: _show(args, read))
    return p


def _show(args: argparse.Namespace, read: Reader) -> int:
    with read_models(quiet=args.json or args.csv) as store:
        whole, rows = read(args, store)
    if args.json:
        print_json(whole)
    elif args.csv:
        _csv(rows)
    elif rows:
        headers = list(rows[0])
        print("\n".join(table([h.upper() for h in headers],
                              [[r.get(h) for h in headers] for r in rows])))
    else:
        print("(none)")
    return Exit.OK


def _csv(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _pipeline(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    rows = PipelineView(store).open_by(args.by)
    return {"by": args.by, "items": rows}, rows


def _forecast(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    rows = PipelineView(store).forecast(None, args.owner, args.from_month, args.to_month)
    return {"items": rows}, rows


def _stages(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    view = PipelineView(store)
    rows, outcomes = view.stages(), view.outcomes()
    if not (args.json or args.csv):
        print("  ".join(f"{k}: {'-' if v is None else v}" for k, v in outcomes.items()))
    return {"stages": rows, "outcomes": outcomes}, rows


def _revenue(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    rows = OrdersView(store).per_month(None, args.from_month, args.to_month)
    return {"items": rows}, rows


def _rfm(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    conf = settings_mod.load().sales
    day = args.as_of or datetime.now(UTC).date()
    period = args.period_days or conf.rfm_period_days
    if period < 1:
        raise CliError("--period-days must be at least 1")
    cur = args.currency or conf.rfm_currency
    rows = OrdersView(store).rfm(day, period, cur)
    return {"as_of": day.isoformat(), "period_days": period, "currency": cur,
            "items": rows}, rows


def _lifecycle(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    view = LifecycleView(store)
    day = args.as_of or datetime.now(UTC).date()
    counts = view.counts(day)
    rows = view.flows(None, args.from_month, args.to_month)
    if not (args.json or args.csv):
        print(f"as of {day}: " + "  ".join(f"{k}: {v}" for k, v in counts.items()))
    return {"as_of": day.isoformat(), "counts": counts, "flows": rows}, rows


def _customer_rows(args: argparse.Namespace, store: ReadStore, what: str,
                   read: Callable[[str], list[dict[str, Any]]]) -> tuple[Any, list[dict[str, Any]]]:
    asked = customer_id(args.customer)
    root = existing(SummaryView(store).resolve(asked), asked).root
    record_reads(store, command_line(f"sales {what} {{customer}}", json=args.json, csv=args.csv),
                 [asked, root])
    rows = read(root)
    return {"customer_id": root, "items": rows}, rows


def _opportunities(args: argparse.Namespace, store: ReadStore
                   ) -> tuple[Any, list[dict[str, Any]]]:
    return _customer_rows(args, store, "opportunities", PipelineView(store).of_customer)


def _orders(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    return _customer_rows(args, store, "orders", OrdersView(store).of_customer)


def _events(args: argparse.Namespace, store: ReadStore) -> tuple[Any, list[dict[str, Any]]]:
    if not 1 <= args.limit <= 500 or args.after < 0:
        raise CliError("--limit must be 1–500 and --after ≥ 0")
    rows, following = PipelineView(store).event_ids(
        status=args.status, stage=args.stage, owner=args.owner, close_month=args.close_month,
        after=args.after, limit=args.limit)
    return {"items": rows, "next_after": following}, rows


def _command(args: argparse.Namespace) -> int:
    cmd = args.model.model_validate({"actor": "cli", **model_input(args, args.model)})
    with open_hub() as hub:
        print_recorded(hub.execute(cmd))
    return Exit.OK


def _month(text: str) -> str:
    try:
        datetime.strptime(text, "%Y-%m")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}") from exc
    return text


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from exc


def _currency(text: str) -> str:
    try:
        return currency_code(text)
    except InvalidMoneyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
