"""The orders read model: every order, every refund, and the events behind them.

One row per order (customer, currency, total in minor units, placed time and
month, paid and refunded amounts, shipped and cancelled times), one row per
refund (so revenue and RFM *as of* any past date subtract only the refunds
made by then), one row per event (drill-down). Times are the events'
``occurred_at``. No personal field is stored (return and cancel reasons stay
in the log), so an erasure changes nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import sales
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, iso, kind_of, us
from projections.store import Db

_ORDER_EVENTS = (sales.OrderPlaced, sales.OrderPaid, sales.OrderShipped, sales.OrderReturned,
                 sales.OrderCancelled)


def month_of(micros: int) -> str:
    return (iso(micros) or "")[:7]


class OrdersProjection(Projection):
    name = "orders"
    touches = (*IDENTITY_EVENTS, *_ORDER_EVENTS)
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "partner_id", "merged_into")),
        Table("sales_order", ("order_number",),
              ("order_number", "customer_id", "currency", "total_minor", "lines", "placed_us",
               "month", "paid_minor", "refunded_minor", "shipped_us", "cancelled_us",
               "opportunity_id")),
        Table("refund", ("event_id",),
              ("event_id", "order_number", "customer_id", "currency", "at_us", "month",
               "amount_minor")),
        Table("event", ("event_id",),
              ("event_id", "order_number", "customer_id", "position", "kind")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, partner_id TEXT, "
             "merged_into TEXT)"),
            ("CREATE TABLE {sales_order} (order_number TEXT PRIMARY KEY, customer_id TEXT NOT "
             "NULL, currency TEXT NOT NULL, total_minor BIGINT NOT NULL, lines INTEGER NOT "
             "NULL, placed_us BIGINT NOT NULL, month TEXT NOT NULL, paid_minor BIGINT NOT NULL "
             "DEFAULT 0, refunded_minor BIGINT NOT NULL DEFAULT 0, shipped_us BIGINT, "
             "cancelled_us BIGINT, opportunity_id TEXT)"),
            "CREATE INDEX {sales_order}_customer ON {sales_order} (customer_id, placed_us)",
            "CREATE INDEX {sales_order}_month ON {sales_order} (month)",
            ("CREATE TABLE {refund} (event_id TEXT PRIMARY KEY, order_number TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, currency TEXT NOT NULL, at_us BIGINT NOT NULL, "
             "month TEXT NOT NULL, amount_minor BIGINT NOT NULL)"),
            ("CREATE TABLE {event} (event_id TEXT PRIMARY KEY, order_number TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL)"),
            "CREATE INDEX {event}_order ON {event} (order_number, position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # The event rows go in one insert for the batch (nothing here reads or changes
        # them): a statement per order event was half of this model's statements.
        events: list[tuple[Any, ...]] = []
        for pos, e in items:
            if apply_identity(db, t.customer, e) or not isinstance(e, _ORDER_EVENTS):
                continue
            cid = customer_id(e)
            events.append((event_id_text(e), e.order_number, cid, pos, kind_of(e)))
            _apply(db, t, cid, e, us(e.occurred_at))
        db.executemany(f"INSERT INTO {t.event} (event_id, order_number, customer_id, position, "
                       "kind) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING", events)


def _apply(db: Db, t: Names, cid: str, e: Any, at: int) -> None:
    number = e.order_number
    if isinstance(e, sales.OrderPlaced):
        db.execute(f"INSERT INTO {t.sales_order} (order_number, customer_id, currency, "
                   "total_minor, lines, placed_us, month, opportunity_id) VALUES (?,?,?,?,?,?,?,?) "
                   "ON CONFLICT (order_number) DO NOTHING",
                   (number, cid, e.currency, sales.to_minor(e.total, e.currency), len(e.lines),
                    at, month_of(at), e.opportunity_id))
    elif isinstance(e, sales.OrderPaid):
        db.execute(f"UPDATE {t.sales_order} SET paid_minor=paid_minor+? WHERE order_number=?",
                   (sales.to_minor(e.amount, e.currency), number))
    elif isinstance(e, sales.OrderShipped):
        db.execute(f"UPDATE {t.sales_order} SET shipped_us=? WHERE order_number=?", (at, number))
    elif isinstance(e, sales.OrderCancelled):
        db.execute(f"UPDATE {t.sales_order} SET cancelled_us=? WHERE order_number=?",
                   (at, number))
    elif isinstance(e, sales.OrderReturned):
        minor = sales.to_minor(e.amount, e.currency)
        db.execute(f"UPDATE {t.sales_order} SET refunded_minor=refunded_minor+? "
                   "WHERE order_number=?", (minor, number))
        db.execute(f"INSERT INTO {t.refund} (event_id, order_number, customer_id, currency, "
                   "at_us, month, amount_minor) VALUES (?,?,?,?,?,?,?) "
                   "ON CONFLICT (event_id) DO NOTHING",
                   (event_id_text(e), number, cid, e.currency, at, month_of(at), minor))
