"""The territories read model: open opportunities with their customer's address, and
each territory's reassignments.

``opportunity``  every opportunity: owner, amount, currency, status (open/won/lost)
``address``      each customer's country and postcode (personal: deleted on
                 ``PersonalDataErased``, so the live model equals a rebuild)
``reassigned``   a territory's latest reassignment (new owner, the move's id)
``moved``        which opportunities each move has moved already

Which territory an address lies in is decided at read time from the settings
(``domain.territories.territory_of``), so a changed territory map needs no rebuild.
The territory policy reads ``pending_moves`` and sends the moves; nothing is sent here.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain import sales
from domain import territories as tr
from domain.customer import Customer
from projections.campaigns.projection import record_id
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, is_erased, us
from projections.store import Db

_STATUS = {sales.OpportunityWon: "won", sales.OpportunityLost: "lost",
           sales.OpportunityReopened: "open"}


class TerritoriesProjection(Projection):
    name = "territories"
    consumes = (Customer.Event, tr.Territory.Event)
    touches = (tr.Territory.Reassigned, Customer.PersonalDataErased, sales.OpportunityOpened,
               sales.OpportunityChanged, *_STATUS, tr.OpportunityTerritoryMoved,
               Customer.ProfileChanged)
    tables = (
        Table("opportunity", ("opportunity_id",), ("opportunity_id", "customer_id", "owner",
                                                   "amount", "currency", "status",
                                                   "opened_us")),
        Table("address", ("customer_id",), ("customer_id", "country", "postcode")),
        Table("reassigned", ("territory",), ("territory", "owner", "move_id", "moved_us")),
        Table("moved", ("move_id", "opportunity_id"), ("move_id", "opportunity_id")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {opportunity} (opportunity_id TEXT PRIMARY KEY, customer_id TEXT NOT "
             "NULL, owner TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, "
             "status TEXT NOT NULL, opened_us BIGINT NOT NULL)"),
            ("CREATE TABLE {address} (customer_id TEXT PRIMARY KEY, country TEXT, "
             "postcode TEXT)"),
            ("CREATE TABLE {reassigned} (territory TEXT PRIMARY KEY, owner TEXT NOT NULL, "
             "move_id TEXT NOT NULL, moved_us BIGINT NOT NULL)"),
            ("CREATE TABLE {moved} (move_id TEXT NOT NULL, opportunity_id TEXT NOT NULL, "
             "PRIMARY KEY (move_id, opportunity_id))"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return ["CREATE INDEX {opportunity}_open ON {opportunity} (status, customer_id)"]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            if isinstance(e, tr.Territory.Reassigned):
                db.execute(
                    f"INSERT INTO {t.reassigned} (territory, owner, move_id, moved_us) "
                    "VALUES (?,?,?,?) ON CONFLICT (territory) DO UPDATE SET "
                    "owner = excluded.owner, move_id = excluded.move_id, "
                    "moved_us = excluded.moved_us",
                    (_territory_key(e), e.owner, e.move_id, us(e.occurred_at)))
                continue
            if isinstance(e, tr.Territory.Event):
                continue
            cid = customer_id(e)
            if isinstance(e, Customer.PersonalDataErased):
                db.execute(f"DELETE FROM {t.address} WHERE customer_id = ?", (cid,))
            elif isinstance(e, sales.OpportunityOpened):
                db.execute(
                    f"INSERT INTO {t.opportunity} (opportunity_id, customer_id, owner, amount, "
                    "currency, status, opened_us) VALUES (?,?,?,?,?,?,?) ON CONFLICT "
                    "(opportunity_id) DO NOTHING",
                    (e.opportunity_id, cid, e.owner, e.amount, e.currency, "open",
                     us(e.occurred_at)))
            elif isinstance(e, sales.OpportunityChanged):
                db.execute(f"UPDATE {t.opportunity} SET owner = ?, amount = ?, currency = ? "
                           "WHERE opportunity_id = ?",
                           (e.owner, e.amount, e.currency, e.opportunity_id))
            elif type(e) in _STATUS:
                db.execute(f"UPDATE {t.opportunity} SET status = ? WHERE opportunity_id = ?",
                           (_STATUS[type(e)], e.opportunity_id))  # type: ignore[attr-defined]
            elif isinstance(e, tr.OpportunityTerritoryMoved):
                db.execute(f"INSERT INTO {t.moved} (move_id, opportunity_id) VALUES (?, ?) "
                           "ON CONFLICT (move_id, opportunity_id) DO NOTHING",
                           (e.move_id, e.opportunity_id))
            elif isinstance(e, Customer.ProfileChanged) and not is_erased(e) and (
                    "country" in e.changes or "postcode" in e.changes):
                _address(db, t, cid, e.changes)


def _territory_key(e: tr.Territory.Reassigned) -> str:
    # The record's id is derived from the name; the row is keyed by that id (as text),
    # which the view maps back to the configured names.
    return record_id(e.originator_id, "territory")


def _address(db: Db, t: Names, cid: str, changes: dict[str, str | None]) -> None:
    row = db.one(f"SELECT country, postcode FROM {t.address} WHERE customer_id = ?", (cid,))
    country, postcode = row if row is not None else (None, None)
    country = changes.get("country", country)
    postcode = changes.get("postcode", postcode)
    db.execute(f"INSERT INTO {t.address} (customer_id, country, postcode) VALUES (?,?,?) "
               "ON CONFLICT (customer_id) DO UPDATE SET country = excluded.country, "
               "postcode = excluded.postcode", (cid, country, postcode))
