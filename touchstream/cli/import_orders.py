"""``touchstream import orders FILE``: ERP orders from CSV or JSON lines (see channels.erp).

Each order is recorded once (its order number is its source key: importing the same
file again records nothing new); an order refused (bad row, unknown customer, total
not matching its lines) is reported on stderr with its line numbers and the others are
kept. Prints ``{"recorded", "duplicates", "failed"}``; exits 1 when any order failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from channels.erp.orders import LINE_COLUMNS, ORDER_COLUMNS, read_csv, read_jsonl
from commands.hub import CommandError
from domain.errors import DomainError
from replays.progress import ProgressBar
from touchstream.cli.common import ending, open_hub, print_json
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = kinds.add_parser(
        "orders", help="ERP orders, CSV (one row per line) or JSON lines (one order per line)",
        description=f"Record ERP orders. CSV columns: {', '.join(ORDER_COLUMNS)} (order) and "
                    f"{', '.join(LINE_COLUMNS)} (line); rows of one order_number are one "
                    "order; customer_id or customer_email names the customer. JSON lines: "
                    "one place-order body per line (with placed_at). Idempotent by order "
                    "number; bad orders are reported with line numbers, good ones kept; "
                    "exits 1 when any order failed.")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto",
                   help="auto: by the file's extension (.csv; anything else is JSON lines)")
    p.set_defaults(func=_orders)


def _orders(args: argparse.Namespace) -> int:
    kind = args.format if args.format != "auto" else (
        "csv" if args.file.suffix.lower() == ".csv" else "jsonl")
    try:
        stream = open(args.file, encoding="utf-8", newline="")  # noqa: SIM115 -- closed below
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    recorded = duplicates = failed = 0
    bar = ProgressBar.on_terminal("import orders", unit="orders")
    with stream, open_hub() as hub, ending(bar):
        def find(email: str):  # type: ignore[no-untyped-def]
            return hub.find_by_contact("email", email)

        read = read_csv if kind == "csv" else read_jsonl
        try:
            orders = list(read(stream, find))
        except ValueError as exc:
            raise CliError(f"{args.file}: {exc}") from exc
        for done, order in enumerate(orders, start=1):
            bar(done)
            where = _lines(order.lines)
            if order.command is None:
                failed += 1
                print(f"touchstream: {where}: {order.problem}", file=sys.stderr)
                continue
            try:
                result = hub.execute(order.command)
            except (DomainError, CommandError) as exc:
                failed += 1
                print(f"touchstream: {where}: order {order.command.order_number}: {exc}",
                      file=sys.stderr)
                continue
            if result.duplicate:
                duplicates += 1
            else:
                recorded += 1
    print_json({"recorded": recorded, "duplicates": duplicates, "failed": failed})
    return Exit.PROBLEMS if failed else Exit.OK


def _lines(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    return f"lines {', '.join(str(n) for n in numbers)}"
