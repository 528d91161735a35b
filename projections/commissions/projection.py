"""The commissions read model: every won opportunity with its owner and amount.

``won`` holds one row per opportunity currently won (a reopened one leaves it
until it is won again), with the owner at the moment it was won; ``owner``
follows each opportunity's owner (opened, changed). Rates are not stored: the
view applies ``domain.work.commission`` with the rates in the settings, so a
changed rate restates every period without a rebuild. No personal data.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain import sales
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db


class CommissionsProjection(Projection):
    name = "commissions"
    touches = (sales.OpportunityOpened, sales.OpportunityChanged, sales.OpportunityWon,
               sales.OpportunityReopened)
    tables = (
        Table("won", ("opportunity_id",), ("opportunity_id", "customer_id", "owner", "amount",
                                           "currency", "won_us", "event_id")),
        Table("owner", ("opportunity_id",), ("opportunity_id", "owner")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {won} (opportunity_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "owner TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, "
             "won_us BIGINT NOT NULL, event_id TEXT NOT NULL)"),
            "CREATE TABLE {owner} (opportunity_id TEXT PRIMARY KEY, owner TEXT NOT NULL)",
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return ["CREATE INDEX {won}_when ON {won} (won_us, owner)"]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            if isinstance(e, (sales.OpportunityOpened, sales.OpportunityChanged)):
                db.execute(f"INSERT INTO {t.owner} (opportunity_id, owner) VALUES (?, ?) "
                           "ON CONFLICT (opportunity_id) DO UPDATE SET owner = excluded.owner",
                           (e.opportunity_id, e.owner))
            elif isinstance(e, sales.OpportunityWon):
                row = db.one(f"SELECT owner FROM {t.owner} WHERE opportunity_id = ?",
                             (e.opportunity_id,))
                db.execute(f"DELETE FROM {t.won} WHERE opportunity_id = ?", (e.opportunity_id,))
                db.execute(
                    f"INSERT INTO {t.won} (opportunity_id, customer_id, owner, amount, currency, "
                    "won_us, event_id) VALUES (?,?,?,?,?,?,?)",
                    (e.opportunity_id, customer_id(e), row[0] if row else "", e.amount,
                     e.currency, us(e.occurred_at), str(e.event_id)))
            elif isinstance(e, sales.OpportunityReopened):
                db.execute(f"DELETE FROM {t.won} WHERE opportunity_id = ?", (e.opportunity_id,))
