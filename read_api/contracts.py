"""A customer's service contracts and installed base (issue 14), merged-in customers'
included, judged on a day (``as_of``, default today in UTC).

| Route                              | Roles                  |
|------------------------------------|------------------------|
| GET /customers/{id}/contracts      | service, agent, dispatcher |

Contract and product events hold no personal field the read model keeps (ids, periods,
product codes, serial numbers, SLA policy; see ``domain.personal``), so the read is not
recorded in the read audit.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from projections.contracts.view import ContractsView
from read_api.dependencies import (
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    responses,
    scoped,
)

CONTRACT_ROLES = ("service", "agent", "dispatcher")
_CUSTOMER = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"


class ContractPublic(BaseModel):
    contract_id: str
    customer_id: str = Field(description="Stream it is on (a merged-in customer's id).")
    account_id: str | None
    starts_on: str
    ends_on: str = Field(description="Last day covered (moved earlier when ended early).")
    covered_products: list[str] = Field(description="Product codes; empty covers every one.")
    sla_policy: str
    visits_included: int
    added_at: str | None
    ended_early_at: str | None = Field(description="When it was ended early, if it was.")
    state: Literal["upcoming", "active", "expired"] = Field(description="On ``as_of``.")
    event_id: str = Field(description="The event that added it.")


class InstalledProductPublic(BaseModel):
    product_id: str
    customer_id: str
    product_code: str
    serial_number: str
    installed_on: str | None
    recorded_at: str | None
    removed_at: str | None
    installed: bool = Field(description="Not removed by ``as_of``.")
    covered_by: list[str] = Field(description="Contracts active on ``as_of`` covering it.")
    event_id: str = Field(description="The event that recorded it.")


class CustomerContractsPublic(BaseModel):
    customer_id: str = Field(description="The surviving customer (merges followed).")
    as_of: str
    active_contracts: int
    contracts: list[ContractPublic] = Field(description="Newest start first (at most 200).")
    installed_products: int
    products: list[InstalledProductPublic] = Field(description="Newest first (at most 200).")

    model_config = {"json_schema_extra": {"examples": [{
        "customer_id": _CUSTOMER, "as_of": "2026-11-30", "active_contracts": 1,
        "contracts": [{
            "contract_id": "2f6e1a3b-8c4d-4e5f-9a0b-1c2d3e4f5a6b", "customer_id": _CUSTOMER, "account_id": None,
            "starts_on": "2026-01-01", "ends_on": "2026-12-31",
            "covered_products": ["BOILER-S"], "sla_policy": "gold", "visits_included": 2,
            "added_at": "2025-12-20T10:00:00+00:00", "ended_early_at": None,
            "state": "active", "event_id": "9d4f1b0e-2c7a-5e3b-8f61-0a2b3c4d5e6f"}],
        "installed_products": 1,
        "products": [{
            "product_id": "4e2a8c1f-5b3d-4a7e-9c0b-1d2e3f4a5b6c", "customer_id": _CUSTOMER,
            "product_code": "BOILER-S", "serial_number": "BS-2291-0043",
            "installed_on": "2025-11-02", "recorded_at": "2025-11-02T15:00:00+00:00",
            "removed_at": None, "installed": True, "covered_by": ["2f6e1a3b-8c4d-4e5f-9a0b-1c2d3e4f5a6b"],
            "event_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f"}]}]}}


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["service"])
    view = ContractsView(deps.views.store)
    reader = deps.reader(*CONTRACT_ROLES)

    @router.get("/customers/{customer_id}/contracts",
                summary="A customer's service contracts and installed base (merged-in "
                        "customers' included)",
                response_class=OrjsonResponse, response_model=CustomerContractsPublic,
                responses=responses(404, 409, 503))
    async def customer_contracts(
        customer_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        as_of: Annotated[date | None, Query(
            description="The day contracts are judged in force on (default today, UTC).",
            openapi_examples={"today": {"value": "2026-11-30"}})] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view, deps.views.summary], min_position)
        day = as_of or datetime.now(UTC).date()

        def work() -> dict[str, Any]:
            found = scoped(deps.views.summary.resolve(str(customer_id)), who, customer_id)
            return view.of_customer(found.root, day)

        return OrjsonResponse(await deps.call(work))

    return router
