"""ERP orders from a file: CSV (one row per order line) or JSON lines (one order per line).

CSV columns (header row required; order of columns free)::

    order_number, customer_id | customer_email, placed_at, currency, total,
    product_code, quantity, unit_price, discount (optional, % of the line),
    opportunity_id (optional)

Rows with the same ``order_number`` are one order (its lines in file order); the
order-level columns must agree on every row of the order. JSON lines: one object
per line, the body of ``POST /commands/place-order`` plus ``placed_at`` (or
``occurred_at``) and optionally ``customer_email`` instead of ``customer_id``.
Amounts are decimal text (a JSON number is refused: it may not be exact).

Parsing only: each order comes back as a ``PlaceOrder`` message (customer by id) or
as the line numbers and reason it was refused for; nothing here records anything.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from commands.sales import PlaceOrder

ORDER_COLUMNS = ("order_number", "customer_id", "customer_email", "placed_at", "currency",
                 "total", "opportunity_id")
LINE_COLUMNS = ("product_code", "quantity", "unit_price", "discount")
REQUIRED = ("order_number", "placed_at", "currency", "total", "product_code", "quantity",
            "unit_price")
FindCustomer = Callable[[str], UUID | None]


@dataclass
class ParsedOrder:
    """One order of the file: its command, or why it was refused, and where it was."""

    lines: list[int]
    command: PlaceOrder | None = None
    problem: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'order'}: {e['msg']}"
                     for e in exc.errors(include_url=False))


def _command(data: dict[str, Any], find: FindCustomer, actor: str) -> PlaceOrder:
    data = dict(data)
    email = data.pop("customer_email", None)
    if not data.get("customer_id"):
        data.pop("customer_id", None)
        if not email:
            raise ValueError("customer_id or customer_email is needed")
        found = find(str(email))
        if found is None:
            raise ValueError(f"no customer owns email {email!r}")
        data["customer_id"] = str(found)
    if "placed_at" in data:
        data["occurred_at"] = data.pop("placed_at")
    data.setdefault("actor", actor)
    return PlaceOrder.model_validate(data)


def _finish(order: ParsedOrder, find: FindCustomer, actor: str) -> ParsedOrder:
    if order.problem is None:
        try:
            order.command = _command(order.data, find, actor)
        except ValidationError as exc:
            order.problem = describe(exc)
        except ValueError as exc:
            order.problem = str(exc)
    return order


def read_csv(rows: Iterable[str], find: FindCustomer, actor: str = "import") -> Iterator[
        ParsedOrder]:
    """The orders of a CSV file (lines numbered from 1, the header being line 1)."""
    reader = csv.DictReader(rows)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the header lacks column(s) {', '.join(missing)}; columns: "
                         f"{', '.join(ORDER_COLUMNS + LINE_COLUMNS)}")
    orders: dict[str, ParsedOrder] = {}
    for row in reader:
        number = reader.line_num
        key = (row.get("order_number") or "").strip()
        order = orders.setdefault(key or f"(line {number})", ParsedOrder(lines=[]))
        order.lines.append(number)
        if None in row or any(v is None for v in row.values()):
            order.problem = order.problem or f"line {number}: wrong number of columns"
            continue
        head = {c: row[c].strip() for c in ORDER_COLUMNS if row.get(c, "").strip()}
        if not order.data:
            order.data = {**head, "lines": []}
        else:
            differs = [c for c in head if order.data.get(c) != head[c]]
            if differs:
                order.problem = order.problem or (
                    f"line {number}: {', '.join(differs)} differs from the order's first line")
        order.data["lines"].append({c: row[c].strip() for c in LINE_COLUMNS
                                    if row.get(c, "").strip()})
    for order in orders.values():
        yield _finish(order, find, actor)


def read_jsonl(rows: Iterable[str], find: FindCustomer, actor: str = "import") -> Iterator[
        ParsedOrder]:
    """The orders of a JSON-lines file, one per non-empty line."""
    for number, text in enumerate(rows, start=1):
        if not text.strip():
            continue
        order = ParsedOrder(lines=[number])
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            order.problem = f"not JSON: {exc.msg}"
            yield order
            continue
        if not isinstance(data, dict):
            order.problem = "a line must hold one JSON object"
        else:
            order.data = data
        yield _finish(order, find, actor)
