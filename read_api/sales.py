"""Sales read routes: pipeline, forecast, stage conversion, orders and revenue, RFM, lifecycle
stages over time, and the events behind each figure.

| Route | Roles |
|---|---|
| GET /sales/pipeline, /sales/forecast, /sales/stages, /sales/pipeline/events | sales, analyst, partner* |
| GET /sales/revenue/monthly, /sales/revenue/customers, /sales/orders/events | sales, analyst, partner* |
| GET /sales/rfm, /sales/lifecycle, /sales/lifecycle/events | sales, marketing, analyst, partner* |
| GET /customers/{id}/opportunities, /customers/{id}/orders | sales, partner* |
| GET /customers/{id}/rfm, /customers/{id}/lifecycle | sales, marketing, partner* |

``*`` A partner key's figures count only the customers assigned to its partner;
another partner's customer answers 404 like an unknown one. A customer's
opportunities and orders are on the read audit like its summary. Drill-down
routes page by log position (``after``, ``next_after``).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from domain.sales import currency_code
from projections.lifecycle.view import LifecycleView
from projections.orders.view import OrdersView
from projections.pipeline.view import PipelineView
from read_api.dependencies import (
    MAX_POSITION,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    responses,
    scoped,
)
from read_api.sales_schemas import (
    ContributingEventsPublic,
    CustomerLifecyclePublic,
    ForecastPublic,
    LifecyclePublic,
    OpportunitiesPublic,
    OrdersPublic,
    PipelinePublic,
    RevenuePublic,
    RfmPagePublic,
    RfmPublic,
    StagesPublic,
)

PIPELINE_ROLES = ("sales", "analyst", "partner")
RFM_ROLES = ("sales", "marketing", "analyst", "partner")
CUSTOMER_ROLES = ("sales", "partner")
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2027-02"])]
After = Annotated[int, Query(ge=0, le=MAX_POSITION, description=(
    "Log position after which the page starts (a previous page's `next_after`)."))]
Limit = Annotated[int, Query(ge=1, le=500)]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]


def partner_scope(who: Principal) -> str | None:
    """The partner whose customers a figure may count (None: all customers)."""
    return (who.partner_id or "") if is_partner(who) else None


def router(deps: ReadDeps, *, rfm_period_days: int = 365, rfm_currency: str = "EUR"
           ) -> APIRouter:
    router = APIRouter(tags=["sales"])
    pipeline = PipelineView(deps.views.store)
    orders = OrdersView(deps.views.store)
    lifecycle = LifecycleView(deps.views.store)
    summary = deps.views.summary
    reader = deps.reader(*PIPELINE_ROLES)
    rfm_reader = deps.reader(*RFM_ROLES)
    customer_reader = deps.reader(*CUSTOMER_ROLES)
    customer_rfm_reader = deps.reader("sales", "marketing", "partner")
    common = responses(400, 409, 503)

    @router.get("/sales/pipeline", summary="Open opportunities by stage, owner or close month",
                response_class=OrjsonResponse, response_model=PipelinePublic, responses=common)
    async def open_pipeline(
        who: Annotated[Principal, Depends(reader)],
        by: Literal["stage", "owner", "close_month"] = "stage",
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([pipeline], min_position)
        items = await deps.call(pipeline.open_by, by, partner_scope(who))
        return OrjsonResponse({"by": by, "items": items})

    @router.get("/sales/forecast", summary="Weighted forecast per expected close month and owner",
                response_class=OrjsonResponse, response_model=ForecastPublic, responses=common)
    async def forecast(
        who: Annotated[Principal, Depends(reader)],
        owner: Text = None, from_month: Month = None, to_month: Month = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([pipeline], min_position)
        items = await deps.call(pipeline.forecast, partner_scope(who), owner, from_month,
                                to_month)
        return OrjsonResponse({"items": items})

    @router.get("/sales/stages",
                summary="Stage conversion and days in stage; win rate and sales cycle",
                response_class=OrjsonResponse, response_model=StagesPublic, responses=common)
    async def stages(
        who: Annotated[Principal, Depends(reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([pipeline], min_position)
        scope = partner_scope(who)
        return OrjsonResponse({"stages": await deps.call(pipeline.stages, scope),
                               "outcomes": await deps.call(pipeline.outcomes, scope)})

    @router.get("/sales/pipeline/events",
                summary="The events behind a pipeline or forecast figure (drill-down)",
                response_class=OrjsonResponse, response_model=ContributingEventsPublic,
                responses=common)
    async def pipeline_events(
        who: Annotated[Principal, Depends(reader)],
        status: Literal["open", "won", "lost"] | None = "open",
        stage: Text = None, owner: Text = None, close_month: Month = None,
        after: After = 0, limit: Limit = 100,
    ) -> OrjsonResponse:
        page, following = await deps.call(lambda: pipeline.event_ids(
            partner_id=partner_scope(who), status=status, stage=stage, owner=owner,
            close_month=close_month, after=after, limit=limit))
        return OrjsonResponse({"items": page, "next_after": following})

    @router.get("/sales/revenue/monthly",
                summary="Revenue, orders, average order value and returns per month",
                response_class=OrjsonResponse, response_model=RevenuePublic, responses=common)
    async def monthly(
        who: Annotated[Principal, Depends(reader)],
        from_month: Month = None, to_month: Month = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([orders], min_position)
        items = await deps.call(orders.per_month, partner_scope(who), from_month, to_month)
        return OrjsonResponse({"items": items, "next_after": None})

    @router.get("/sales/revenue/customers",
                summary="Revenue, orders, average order value and returns per customer",
                response_class=OrjsonResponse, response_model=RevenuePublic, responses=common)
    async def per_customer(
        who: Annotated[Principal, Depends(reader)],
        after: Annotated[UUID | None, Query(description="A previous page's `next_after`.")] = None,
        limit: Limit = 100,
    ) -> OrjsonResponse:
        items, following = await deps.call(
            orders.per_customer, partner_scope(who), limit, str(after) if after else None)
        return OrjsonResponse({"items": items, "next_after": following})

    @router.get("/sales/orders/events",
                summary="The events behind a revenue figure (drill-down)",
                response_class=OrjsonResponse, response_model=ContributingEventsPublic,
                responses=common)
    async def order_events(
        who: Annotated[Principal, Depends(reader)],
        month: Month = None, customer_id: UUID | None = None,
        after: After = 0, limit: Limit = 100,
    ) -> OrjsonResponse:
        page, following = await deps.call(lambda: orders.event_ids(
            partner_id=partner_scope(who), month=month,
            customer_id=str(customer_id) if customer_id else None, after=after, limit=limit))
        return OrjsonResponse({"items": page, "next_after": following})

    @router.get("/sales/rfm", summary="RFM scores of every customer, as of a day",
                response_class=OrjsonResponse, response_model=RfmPagePublic, responses=common)
    async def rfm_page(
        who: Annotated[Principal, Depends(rfm_reader)],
        as_of: Annotated[date | None, Query(description="Default: today (UTC).")] = None,
        period_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
        currency: Currency = None,
        after: Annotated[UUID | None, Query(description="A previous page's `next_after`.")] = None,
        limit: Limit = 100,
    ) -> OrjsonResponse:
        day, period, cur = _rfm_args(as_of, period_days, currency)
        rows = await deps.call(orders.rfm, day, period, cur, partner_scope(who))
        if after is not None:
            rows = [r for r in rows if r["customer_id"] > str(after)]
        page = rows[:limit]
        following = page[-1]["customer_id"] if len(rows) > limit else None
        return OrjsonResponse({"as_of": day.isoformat(), "period_days": period,
                               "currency": cur, "items": page, "next_after": following})

    def _rfm_args(as_of: date | None, period_days: int | None, currency: str | None
                  ) -> tuple[date, int, str]:
        return (as_of or datetime.now(UTC).date(), period_days or rfm_period_days,
                currency_code(currency) if currency else rfm_currency)

    @router.get("/customers/{customer_id}/opportunities",
                summary="A customer's opportunities (merged customers' included)",
                response_class=OrjsonResponse, response_model=OpportunitiesPublic,
                responses=responses(404, 409, 503),
                dependencies=deps.audited(customer_reader))
    async def opportunities(
        customer_id: UUID, who: Annotated[Principal, Depends(customer_reader)],
        request: Request, min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([pipeline, summary], min_position)
        root = await _root(customer_id, who, request)
        return OrjsonResponse({"customer_id": root,
                               "items": await deps.call(pipeline.of_customer, root)})

    @router.get("/customers/{customer_id}/orders",
                summary="A customer's orders (merged customers' included)",
                response_class=OrjsonResponse, response_model=OrdersPublic,
                responses=responses(404, 409, 503),
                dependencies=deps.audited(customer_reader))
    async def customer_orders(
        customer_id: UUID, who: Annotated[Principal, Depends(customer_reader)],
        request: Request, min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([orders, summary], min_position)
        root = await _root(customer_id, who, request)
        return OrjsonResponse({"customer_id": root,
                               "items": await deps.call(orders.of_customer, root)})

    @router.get("/customers/{customer_id}/rfm", summary="A customer's RFM scores as of a day",
                response_class=OrjsonResponse, response_model=RfmPublic,
                responses=responses(404, 409, 503, s404="no orders of customer "
                                    "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11 by 2026-11-30"),
                dependencies=deps.audited(customer_rfm_reader))
    async def customer_rfm(
        customer_id: UUID, who: Annotated[Principal, Depends(customer_rfm_reader)],
        request: Request,
        as_of: Annotated[date | None, Query(description="Default: today (UTC).")] = None,
        period_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
        currency: Currency = None,
    ) -> OrjsonResponse:
        root = await _root(customer_id, who, request)
        day, period, cur = _rfm_args(as_of, period_days, currency)
        found = await deps.call(orders.rfm_of, root, day, period, cur, partner_scope(who))
        if found is None:
            raise HTTPException(404, detail=f"no {cur} orders of customer {customer_id} by {day}")
        return OrjsonResponse(found)

    @router.get("/sales/lifecycle",
                summary="Customers per lifecycle stage as of a day, and the flows per month",
                response_class=OrjsonResponse, response_model=LifecyclePublic, responses=common)
    async def lifecycle_figures(
        who: Annotated[Principal, Depends(rfm_reader)],
        as_of: Annotated[date | None, Query(description="Default: today (UTC).")] = None,
        from_month: Month = None, to_month: Month = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([lifecycle], min_position)
        day = as_of or datetime.now(UTC).date()
        scope = partner_scope(who)
        return OrjsonResponse({
            "as_of": day.isoformat(), "counts": await deps.call(lifecycle.counts, day, scope),
            "flows": await deps.call(lifecycle.flows, scope, from_month, to_month)})

    @router.get("/sales/lifecycle/events",
                summary="The stage changes behind a lifecycle flow (drill-down)",
                response_class=OrjsonResponse, response_model=ContributingEventsPublic,
                responses=common)
    async def lifecycle_events(
        who: Annotated[Principal, Depends(rfm_reader)],
        to_stage: Literal["prospect", "target", "current", "lost"] | None = None,
        month: Month = None, after: After = 0, limit: Limit = 100,
    ) -> OrjsonResponse:
        page, following = await deps.call(lambda: lifecycle.event_ids(
            partner_id=partner_scope(who), to_stage=to_stage, month=month, after=after,
            limit=limit))
        return OrjsonResponse({"items": page, "next_after": following})

    @router.get("/customers/{customer_id}/lifecycle",
                summary="A customer's lifecycle stages over time",
                response_class=OrjsonResponse, response_model=CustomerLifecyclePublic,
                responses=responses(404, 409, 503),
                dependencies=deps.audited(customer_rfm_reader))
    async def customer_lifecycle(
        customer_id: UUID, who: Annotated[Principal, Depends(customer_rfm_reader)],
        request: Request, min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([lifecycle, summary], min_position)
        root = await _root(customer_id, who, request)
        return OrjsonResponse({"customer_id": root,
                               "items": await deps.call(lifecycle.history, root)})

    async def _root(customer_id: UUID, who: Principal, request: Request) -> str:
        found: Any = await deps.call(lambda: scoped(summary.resolve(str(customer_id)), who,
                                                    customer_id))
        if found.root != str(customer_id):
            await deps.record(request, who, [found.root])
        return str(found.root)

    return router
