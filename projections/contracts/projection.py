"""A customer's service contracts and installed base (issue 14).

``contract`` holds one row per service contract (period, covered products, SLA
policy, visits included; ``ended_event`` when it was ended early), ``product``
one row per installed product (code, serial number, installed day, and the
moment it was removed). Whether a contract is in force is a question of the day
it is asked, so the view answers it for an ``as_of`` day; nothing clock-dependent
is stored. ``customer`` keeps merges and partners (``projections.customers``): a
merged customer's contracts and products are read under the survivor.

These events carry no personal field except a removal's reason, which is not
stored, so an erasure changes nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from domain import service as s
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db

_CONTRACT = ("contract_id", "customer_id", "account_id", "starts_on", "ends_on",
             "covered_products", "sla_policy", "visits_included", "added_us", "ended_us",
             "event_id")
_PRODUCT = ("product_id", "customer_id", "product_code", "serial_number", "installed_on",
            "recorded_us", "removed_us", "event_id")


class ContractsProjection(Projection):
    name = "contracts"
    touches = (*IDENTITY_EVENTS, s.ServiceContractAdded, s.ServiceContractEnded,
               s.InstalledProductRecorded, s.InstalledProductRemoved)
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "merged_into", "partner_id")),
        Table("contract", ("contract_id",), _CONTRACT),
        Table("product", ("product_id",), _PRODUCT),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, merged_into TEXT, "
             "partner_id TEXT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {contract} (contract_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "account_id TEXT, starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, "
             "covered_products TEXT NOT NULL, sla_policy TEXT NOT NULL, "
             "visits_included INTEGER NOT NULL, added_us BIGINT NOT NULL, ended_us BIGINT, "
             "event_id TEXT NOT NULL)"),
            "CREATE INDEX {contract}_customer ON {contract} (customer_id)",
            ("CREATE TABLE {product} (product_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "product_code TEXT NOT NULL, serial_number TEXT NOT NULL, installed_on TEXT, "
             "recorded_us BIGINT NOT NULL, removed_us BIGINT, event_id TEXT NOT NULL)"),
            "CREATE INDEX {product}_customer ON {product} (customer_id)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            if apply_identity(db, t.customer, e):
                continue
            if isinstance(e, s.ServiceContractAdded):
                _contract(db, t, e)
            elif isinstance(e, s.ServiceContractEnded):
                db.execute(f"UPDATE {t.contract} SET ends_on=?, ended_us=? WHERE contract_id=?",
                           (e.ends_on, us(e.occurred_at), e.contract_id))
            elif isinstance(e, s.InstalledProductRecorded):
                db.execute(
                    f"INSERT INTO {t.product} ({', '.join(_PRODUCT)}) VALUES (?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (product_id) DO NOTHING",
                    (e.product_id, customer_id(e), e.product_code, e.serial_number,
                     e.installed_on, us(e.occurred_at), None, str(e.event_id)))
            elif isinstance(e, s.InstalledProductRemoved):
                db.execute(f"UPDATE {t.product} SET removed_us=? WHERE product_id=?",
                           (us(e.occurred_at), e.product_id))


def _contract(db: Db, t: Names, e: s.ServiceContractAdded) -> None:
    products: Any = sorted(e.covered_products)
    db.execute(
        f"INSERT INTO {t.contract} ({', '.join(_CONTRACT)}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (contract_id) DO NOTHING",
        (e.contract_id, customer_id(e), e.account_id, e.starts_on, e.ends_on,
         orjson.dumps(products).decode(), e.sla_policy, e.visits_included, us(e.occurred_at),
         None, str(e.event_id)))
