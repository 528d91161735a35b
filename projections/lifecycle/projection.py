"""The lifecycle read model: every stage a customer was in, and when.

One row per stage change (the registration's stage included), with its time
(``occurred_at``) and log position, so the stage of every customer *as of* any
day, the flows per month and the events behind them are read from it. Nothing
personal is stored (a change's reason stays in the log).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.customer import Customer
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, iso, us
from projections.store import Db


class LifecycleProjection(Projection):
    name = "lifecycle"
    touches = (*IDENTITY_EVENTS, Customer.LifecycleStageChanged)
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "partner_id", "merged_into")),
        Table("transition", ("event_id",),
              ("event_id", "customer_id", "position", "at_us", "month", "from_stage",
               "to_stage")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, partner_id TEXT, "
             "merged_into TEXT)"),
            ("CREATE TABLE {transition} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, at_us BIGINT NOT NULL, month TEXT NOT NULL, "
             "from_stage TEXT, to_stage TEXT NOT NULL)"),
            "CREATE INDEX {transition}_customer ON {transition} (customer_id, at_us)",
            "CREATE INDEX {transition}_at ON {transition} (at_us)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for pos, e in items:
            apply_identity(db, t.customer, e)
            if isinstance(e, Customer.Registered):
                change = (None, e.lifecycle_stage)
            elif isinstance(e, Customer.LifecycleStageChanged):
                change = (e.from_stage, e.to_stage)
            else:
                continue
            at = us(e.occurred_at)
            db.execute(f"INSERT INTO {t.transition} (event_id, customer_id, position, at_us, "
                       "month, from_stage, to_stage) VALUES (?,?,?,?,?,?,?) "
                       "ON CONFLICT (event_id) DO NOTHING",
                       (str(e.event_id), customer_id(e), pos, at, (iso(at) or "")[:7], *change))
