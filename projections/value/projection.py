"""The value read model: every fact the retention and value figures are computed from.

One row per contributing event, keyed by its id: orders placed, paid, refunded
(returned) and cancelled (amount in minor units and currency), interactions
(the touchpoints a customer or we started: calls, emails, faxes, visits, web
forms, callback requests — not the delivery reports of an email already
counted), and lifecycle stage moves (the registration's stage included), each
with ``occurred_at`` (``occurred_us``, ``month``) and ``recorded_at``
(``recorded_us``) and its log position. Grouped per customer and month at read
time, these answer every figure *as of* any day — and *as known at* any
moment — with one indexed query, never a replay. A voided touchpoint's row is
deleted and a corrected date moves it, in log order, so live equals rebuild.
Nothing personal is stored (reasons and texts stay in the log), so an erasure
changes nothing here. Merges are applied at read time (``projections.customers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import sales
from domain.customer import Customer
from projections.activity import day_text
from projections.customers import IDENTITY_CLASSES, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, kind_of, us
from projections.store import Db

#: Touchpoints that are an interaction of their own (follow-ups such as call steps and
#: email delivery reports belong to one already counted).
INTERACTIONS = (Customer.CallLogged, Customer.CallbackRequested, Customer.EmailRecorded,
                Customer.EmailQueued, Customer.FaxRecorded, Customer.VisitRecorded,
                Customer.WebFormSubmitted)
_ORDERS = (sales.OrderPlaced, sales.OrderPaid, sales.OrderReturned, sales.OrderCancelled)
_COLUMNS = ("event_id", "customer_id", "position", "kind", "occurred_us", "recorded_us",
            "month", "order_number", "currency", "amount_minor", "stage", "channel", "direction")


class ValueProjection(Projection):
    name = "value"
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "partner_id", "merged_into")),
        Table("fact", ("event_id",), _COLUMNS),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, partner_id TEXT, "
             "merged_into TEXT)"),
            ("CREATE TABLE {fact} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, kind TEXT NOT NULL, occurred_us BIGINT NOT NULL, "
             "recorded_us BIGINT NOT NULL, month TEXT NOT NULL, order_number TEXT, "
             "currency TEXT, amount_minor BIGINT, stage TEXT, channel TEXT, direction TEXT)"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return [
            "CREATE INDEX {fact}_kind ON {fact} (kind, occurred_us)",
            "CREATE INDEX {fact}_order ON {fact} (order_number, kind)",
            "CREATE INDEX {fact}_customer ON {fact} (customer_id, position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        rows: list[tuple[Any, ...]] = []
        for pos, e in items:
            cls = type(e)
            branch = _BRANCH.get(cls)
            if branch is None:
                branch = _BRANCH[cls] = _branch(cls)
            if branch == 3:
                _flush(db, t, rows)  # the row it changes may be in this batch
                _correct(db, t, e)
                continue
            if cls in IDENTITY_CLASSES:
                apply_identity(db, t.customer, e)
            if branch == 0:
                continue
            at = us(e.occurred_at)
            if branch == 2:  # an interaction: most events
                rows.append((event_id_text(e), customer_id(e), pos, "interaction", at,
                             us(e.timestamp), _month(at), None, None, None, None, e.channel,
                             e.direction))
                continue
            fact = _fact_of(e)
            if fact is not None:
                rows.append((event_id_text(e), customer_id(e), pos, fact[0], at,
                             us(e.recorded_at), _month(at), *fact[1:]))
        _flush(db, t, rows)


def _flush(db: Db, t: Names, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        db.executemany(f"INSERT INTO {t.fact} ({', '.join(_COLUMNS)}) VALUES "
                       f"({','.join('?' * len(_COLUMNS))}) ON CONFLICT (event_id) DO NOTHING",
                       rows)
        rows.clear()


def _month(at: int) -> str:
    month = _MONTHS.get(at // _DAY_US)
    if month is None:
        if len(_MONTHS) >= 65536:
            _MONTHS.clear()
        month = _MONTHS[at // _DAY_US] = day_text(at)[:7]
    return month


_DAY_US = 86_400_000_000
_MONTHS: dict[int, str] = {}

#: Which way ``apply`` goes for an event class (0: no fact, 1: the chain of
#: ``_fact_of``, 2: an interaction, 3: a void or correction), decided once per class:
#: most events are touchpoints, and the chain of ``isinstance`` per event was a fifth
#: of this model's rows.
_BRANCH: dict[type, int] = {}


def _branch(cls: type) -> int:
    if issubclass(cls, Customer.TouchpointVoided | Customer.TouchpointCorrected):
        return 3
    if issubclass(cls, _ORDERS):
        return 1
    if issubclass(cls, INTERACTIONS):
        return 2
    if issubclass(cls, Customer.Registered | Customer.LifecycleStageChanged):
        return 1
    return 0


def _fact_of(e: Any) -> tuple[Any, ...] | None:
    if isinstance(e, _ORDERS):
        amount = getattr(e, "total", None) or getattr(e, "amount", None)
        minor = sales.to_minor(amount, e.currency) if amount is not None else None
        return (kind_of(e), e.order_number, getattr(e, "currency", None), minor, None, None, None)
    if isinstance(e, INTERACTIONS):
        return ("interaction", None, None, None, None, e.channel, e.direction)
    if isinstance(e, Customer.Registered):
        return ("stage", None, None, None, e.lifecycle_stage, None, None)
    if isinstance(e, Customer.LifecycleStageChanged):
        return ("stage", None, None, None, e.to_stage, None, None)
    return None


def _correct(db: Db, t: Names, e: Any) -> None:
    if isinstance(e, Customer.TouchpointVoided):
        db.execute(f"DELETE FROM {t.fact} WHERE event_id=? AND kind='interaction'",
                   (e.voided_event_id,))
    elif e.corrected_occurred_at is not None:
        at = us(e.corrected_occurred_at)
        db.execute(f"UPDATE {t.fact} SET occurred_us=?, month=? WHERE event_id=? "
                   "AND kind='interaction'", (at, day_text(at)[:7], e.corrected_event_id))
