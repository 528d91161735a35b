"""A customer's business objects at a glance, for the summary and the console's customer
page (issues 13, 14, 16): open opportunities and recent orders (sales), consent by channel
and purpose (marketing), open cases with their SLA state (service), open work orders
(dispatch), contracts in force and the installed base (contracts).

Each part is read through its area's own per-customer query and shown only to the roles
that area's per-customer route admits (``admin`` everywhere); any other caller gets
``None`` for it, never an empty list that would read as "nothing there". Every list is
bounded: counts over all the customer's objects, then the ``NEWEST`` few.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.dispatch import OPEN_STAGES
from domain.service import OPEN_STATES
from domain.sla import SlaConfig
from projections.consent.view import ConsentView
from projections.contracts.view import ContractsView
from projections.customers import group
from projections.dispatch.view import DispatchView
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from projections.service.view import ServiceView
from projections.views import LiveView
from read_api.contracts import CONTRACT_ROLES
from read_api.dependencies import SUMMARY_ROLES, Principal, ReadViews
from read_api.dispatch import CUSTOMER_ORDER_ROLES
from read_api.marketing import CONSENT_ROLES
from read_api.sales import CUSTOMER_ROLES as SALES_ROLES

NEWEST = 5
#: Work orders looked at per customer (newest first) when counting the open ones.
WORK_ORDER_SCAN = 200
#: Who sees which part: the roles of the area's own per-customer route.
PART_ROLES: dict[str, tuple[str, ...]] = {
    "sales": SALES_ROLES,  # GET /customers/{id}/opportunities, …/orders
    "consent": CONSENT_ROLES,  # GET /customers/{id}/consent
    "service": SUMMARY_ROLES,  # GET /customers/{id}/cases
    "dispatch": CUSTOMER_ORDER_ROLES,  # GET /customers/{id}/work-orders
    "contracts": CONTRACT_ROLES,  # GET /customers/{id}/contracts
}


def may_read(who: Principal, part: str) -> bool:
    return who.role == "admin" or who.role in PART_ROLES[part]


class BusinessViews:
    """The area views the business block reads, over one read store."""

    def __init__(self, views: ReadViews, sla: SlaConfig) -> None:
        store = views.store
        self.summary = views.summary
        self.pipeline, self.orders = PipelineView(store), OrdersView(store)
        self.consent, self.dispatch = ConsentView(store), DispatchView(store)
        self.service = ServiceView(store, sla)
        self.contracts = ContractsView(store)

    def views_for(self, who: Principal) -> list[LiveView]:
        """The views ``who``'s block reads (for read-your-writes)."""
        by_part: dict[str, list[LiveView]] = {
            "sales": [self.pipeline, self.orders], "consent": [self.consent],
            "service": [self.service], "dispatch": [self.dispatch],
            "contracts": [self.contracts]}
        return [v for part, views in by_part.items() if may_read(who, part) for v in views]

    def block(self, who: Principal, root: str, now: datetime) -> dict[str, Any]:
        """The business block of the customer ``root`` (merged-in customers included) as
        ``who`` may see it, SLA and lateness judged at ``now``. Runs in a worker thread."""
        members = self.summary.run(lambda db, t: group(db, t.customer, root))
        return {
            "as_of": now.isoformat(),
            "sales": self._sales(root) if may_read(who, "sales") else None,
            "consent": self._consent(root, now) if may_read(who, "consent") else None,
            "service": self._service(root, now) if may_read(who, "service") else None,
            "dispatch": self._dispatch(members, now) if may_read(who, "dispatch") else None,
            "contracts": self._contracts(root, now) if may_read(who, "contracts") else None,
        }

    def _sales(self, root: str) -> dict[str, Any]:
        opportunities = [o for o in self.pipeline.of_customer(root) if o["status"] == "open"]
        orders = self.orders.of_customer(root)
        return {
            "open_opportunities": len(opportunities),
            "opportunities": [{k: o[k] for k in (
                "opportunity_id", "title", "stage", "probability", "amount", "currency",
                "expected_close", "opened_at")} for o in opportunities[:NEWEST]],
            "orders": len(orders),
            "recent_orders": [{k: o[k] for k in (
                "order_number", "placed_at", "total", "currency", "status")}
                for o in orders[:NEWEST]],
        }

    def _consent(self, root: str, now: datetime) -> list[dict[str, Any]]:
        return [{k: c[k] for k in ("consent_channel", "purpose", "state", "valid",
                                   "expires_at", "changed_at")}
                for c in self.consent.of_customer(root, now)]

    def _service(self, root: str, now: datetime) -> dict[str, Any]:
        cases = self.service.customer_cases(root)["cases"]  # merged-in customers' included
        cases.sort(key=lambda c: (c["opened_at"] or "", c["case_id"]), reverse=True)
        open_cases = [c for c in cases if c["status"] in OPEN_STATES]
        shown = []
        for c in open_cases[:NEWEST]:
            found = self.service.case(c["case_id"], now) or {}
            shown.append({
                **{k: c[k] for k in ("case_id", "case_kind", "subject", "priority", "status",
                                     "queue", "opened_at", "contract_id",
                                     "outside_contract")},
                "sla_state": found.get("sla_state"),
                "next_deadline": found.get("next_deadline")})
        return {"open_cases": len(open_cases), "cases_total": len(cases), "cases": shown}

    def _dispatch(self, members: Sequence[str], now: datetime) -> dict[str, Any]:
        orders = self.dispatch.of_customers(list(members), now, WORK_ORDER_SCAN)
        open_orders = [o for o in orders if o["stage"] in OPEN_STAGES]
        return {
            "open_work_orders": len(open_orders),
            "work_orders": [{k: o[k] for k in (
                "work_order_id", "case_id", "stage", "skill", "priority", "window_start",
                "window_end", "late", "overdue", "summary")} for o in open_orders[:NEWEST]],
        }

    def _contracts(self, root: str, now: datetime) -> dict[str, Any]:
        found = self.contracts.of_customer(root, now.date())
        active = [c for c in found["contracts"] if c["state"] == "active"]
        return {
            "active_contracts": found["active_contracts"],
            "contracts": [{k: c[k] for k in (
                "contract_id", "starts_on", "ends_on", "sla_policy", "visits_included",
                "covered_products")} for c in active[:NEWEST]],
            "installed_products": found["installed_products"],
        }
