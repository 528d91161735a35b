"""Reading a customer's contracts and installed base, as in force on a given day."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from projections.contracts.projection import ContractsProjection
from projections.customers import group
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.views import LiveView

#: Contracts and products shown per customer (a merge group); the rest are counted.
MAX_ROWS = 200


def contract_state(starts_on: str, ends_on: str, day: date) -> str:
    """``upcoming``, ``active`` or ``expired`` on ``day`` (both ends inclusive, as the
    domain's ``covering_contract`` reads them)."""
    text = day.isoformat()
    if text < starts_on:
        return "upcoming"
    return "active" if text <= ends_on else "expired"


class ContractsView(LiveView):
    projection = ContractsProjection()

    def of_customer(self, root: str, as_of: date) -> dict[str, Any]:
        """The contracts (newest start first) and installed products (newest first) of the
        customer ``root`` and of those merged into it, judged on ``as_of``."""
        def query(db: Db, t: Names) -> tuple[list[Any], list[Any]]:
            members = group(db, t.customer, root)
            marks = ",".join("?" * len(members))
            contracts = db.all(
                "SELECT contract_id, customer_id, account_id, starts_on, ends_on, "
                "covered_products, sla_policy, visits_included, added_us, ended_us, event_id "
                f"FROM {t.contract} WHERE customer_id IN ({marks}) "
                "ORDER BY starts_on DESC, contract_id LIMIT ?", [*members, MAX_ROWS])
            products = db.all(
                "SELECT product_id, customer_id, product_code, serial_number, installed_on, "
                f"recorded_us, removed_us, event_id FROM {t.product} WHERE customer_id IN "
                f"({marks}) ORDER BY recorded_us DESC, product_id LIMIT ?",
                [*members, MAX_ROWS])
            return contracts, products

        contract_rows, product_rows = self.run(query)
        contracts = [{
            "contract_id": r[0], "customer_id": r[1], "account_id": r[2], "starts_on": r[3],
            "ends_on": r[4], "covered_products": orjson.loads(r[5]), "sla_policy": r[6],
            "visits_included": int(r[7]), "added_at": iso(r[8]), "ended_early_at": iso(r[9]),
            "state": contract_state(r[3], r[4], as_of), "event_id": r[10]}
            for r in contract_rows]
        active = [c for c in contracts if c["state"] == "active"]
        products = []
        for r in product_rows:
            removed = r[6] is not None and (iso(r[6]) or "")[:10] <= as_of.isoformat()
            products.append({
                "product_id": r[0], "customer_id": r[1], "product_code": r[2],
                "serial_number": r[3], "installed_on": r[4], "recorded_at": iso(r[5]),
                "removed_at": iso(r[6]), "installed": not removed,
                "covered_by": [] if removed else [
                    c["contract_id"] for c in active
                    if not c["covered_products"] or r[2] in c["covered_products"]],
                "event_id": r[7]})
        return {"customer_id": root, "as_of": as_of.isoformat(),
                "active_contracts": len(active), "contracts": contracts,
                "installed_products": sum(1 for p in products if p["installed"]),
                "products": products}
