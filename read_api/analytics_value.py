"""Value and retention analytics: cohorts and churn, historic CLV, value tiers, RFM.

| Route | Figure |
|---|---|
| GET /analytics/cohorts[/events] | the cohort triangle (cohorts from `from`'s month), churn and retention per period |
| GET /analytics/value[/events] | historic CLV per customer (paged by `offset`), all history up to `until` |
| GET /analytics/value/tiers[/events] | the value pyramid on the revenue from `from` to `until` |
| GET /analytics/rfm[/events] | RFM quintiles (``domain.rfm``) over `from` … `until` (paged by `offset`) |

Roles: ``ANALYTICS_ROLES`` (analyst; admin). The window is the shared one
(``read_api.analytics_common``): ``until`` is the day the figures are as of (default
``as_of`` or today), ``as_of`` leaves out what was recorded after that day. Every figure
comes from the ``value`` read model's rows (no replay); ``?format=csv`` answers the rows.
The ``/events`` routes page the events behind a figure (``role`` is the fact's kind:
``order_placed``, ``order_paid``, ``order_returned``, ``order_cancelled``,
``interaction``, ``stage``).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from domain import value as rules
from domain.analytics import Window
from domain.sales import currency_code
from projections.value.figures import (
    COHORT_COLUMNS,
    RFM_COLUMNS,
    TIER_COLUMNS,
    VALUE_COLUMNS,
    cohorts_doc,
    cut_of,
    month_end,
    rfm_doc,
    tiers_doc,
    value_doc,
)
from projections.value.view import ORDER_KINDS, Cut, ValueView
from read_api.analytics_common import (
    ANALYTICS_ROLES,
    DrillPagePublic,
    FormatParam,
    Page,
    analytics_responses,
    answer,
    drill_down,
    drill_responses,
    page,
    window,
    window_filters,
)
from read_api.analytics_value_schemas import (
    CohortsPublic,
    RfmAnalyticsPublic,
    TiersPublic,
    ValuePagePublic,
)
from read_api.dependencies import OrjsonResponse, Principal, ReadDeps

MAX_OFFSET = 1_000_000

WindowParam = Annotated[Window, Depends(window)]
PageParam = Annotated[Page, Depends(page)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=(
    "Rows to skip (a previous page's `next_offset`)."))]
Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page.")]
CohortMonth = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                   openapi_examples={"jan": {"value": "2026-01"}})]
Period = Annotated[int, Query(ge=0, le=1200, description="Months since the cohort month.")]


def router(deps: ReadDeps, policy: rules.ValuePolicy | None = None,
           rfm_currency: str = "EUR") -> APIRouter:
    router = APIRouter(tags=["analytics"])
    policy = policy or rules.ValuePolicy()
    view = ValueView(deps.views.store)
    reader = deps.reader(*ANALYTICS_ROLES)
    Who = Annotated[Principal, Depends(reader)]

    @router.get("/analytics/cohorts", summary="Retention and churn cohorts (the triangle)",
                response_model=CohortsPublic, responses=analytics_responses(
                    ",".join(COHORT_COLUMNS) + "\n2026-01,1,2026-02,5,4,1,0,0.2,0.8,0.8\n"))
    async def cohorts(who: Who, w: WindowParam, fmt: FormatParam = "json") -> Response:
        return await answer(deps, fmt, "cohorts", lambda: cohorts_doc(view, w, policy),
                            COHORT_COLUMNS)

    @router.get("/analytics/cohorts/events",
                summary="The events behind a cohort cell: its members' facts up to the cell",
                response_model=DrillPagePublic, responses=drill_responses())
    async def cohort_events(
        who: Who, w: WindowParam, cohort: CohortMonth, period: Period,
        pg: PageParam,
        status: Literal["all", "active", "churned", "returned", "inactive"] = "all",
    ) -> OrjsonResponse:
        index = rules.month_index(cohort) + period
        filters = window_filters(w, cohort=cohort, period=period, status=status)
        if index > rules.month_index(rules.month_of(w.until)) or cohort < "1900-01":
            def fetch(after: int, n: int) -> list[dict[str, Any]]:
                return []  # a cell after ``until`` (or before any date) has no events
        else:
            cut = Cut(min(w.until, month_end(rules.month_at(index))), w.known_before_us)

            def fetch(after: int, n: int) -> list[dict[str, Any]]:
                members = view.cohorts(cut, policy).members(cohort, period, status)
                if not members:
                    return []
                return view.events(members, cut, after, n,
                                   since=date.fromisoformat(f"{cohort}-01"))
        return await drill_down(deps, "cohorts", filters, pg, fetch)

    @router.get("/analytics/value", summary="Historic customer lifetime value per customer",
                response_model=ValuePagePublic, responses=analytics_responses(
                    ",".join(VALUE_COLUMNS) + "\n0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11,EUR,6,"
                    "2026-01-10,600.00,180.00,183.63\n"))
    async def value(who: Who, w: WindowParam, fmt: FormatParam = "json",
                    offset: Offset = 0, limit: Limit = 100) -> Response:
        return await answer(deps, fmt, "value",
                            lambda: value_doc(view, w, policy, offset, limit), VALUE_COLUMNS)

    @router.get("/analytics/value/events",
                summary="The order events behind a customer's value (merged ones included)",
                response_model=DrillPagePublic, responses=drill_responses())
    async def value_events(who: Who, w: WindowParam, customer_id: UUID,
                           pg: PageParam) -> OrjsonResponse:
        filters = window_filters(w, customer_id=str(customer_id))
        return await drill_down(deps, "value", filters, pg, lambda after, n: view.events(
            [str(customer_id)], cut_of(w), after, n, kinds=ORDER_KINDS))

    @router.get("/analytics/value/tiers",
                summary="The value pyramid: key, major, ordinary and small customers",
                response_model=TiersPublic, responses=analytics_responses(
                    ",".join(TIER_COLUMNS) + "\nkey,0.5,3,3200.00,0.7143\n"))
    async def tiers(who: Who, w: WindowParam, fmt: FormatParam = "json") -> Response:
        return await answer(deps, fmt, "tiers", lambda: tiers_doc(view, w, policy),
                            TIER_COLUMNS)

    @router.get("/analytics/value/tiers/events",
                summary="The order events behind a value tier (its members' in the window)",
                response_model=DrillPagePublic, responses=drill_responses())
    async def tier_events(who: Who, w: WindowParam, pg: PageParam,
                          tier: Literal["key", "major", "ordinary", "small"]) -> OrjsonResponse:
        filters = window_filters(w, tier=tier)

        def fetch(after: int, n: int) -> list[dict[str, Any]]:
            _, tiers_of, _ = view.tiers(cut_of(w), w.start, policy)
            members = [c for c, t in tiers_of.items() if t == tier]
            if not members:
                return []
            return view.events(members, cut_of(w), after, n, kinds=ORDER_KINDS, since=w.start)
        return await drill_down(deps, "tiers", filters, pg, fetch)

    @router.get("/analytics/rfm", summary="RFM quintiles per customer over the window",
                response_model=RfmAnalyticsPublic, responses=analytics_responses(
                    ",".join(RFM_COLUMNS) + "\n0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11,"
                    "2026-06-10,20,6,600.00,EUR,5,5,4,554\n"))
    async def rfm(who: Who, w: WindowParam, fmt: FormatParam = "json", offset: Offset = 0,
                  limit: Limit = 100,
                  currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None
                  ) -> Response:
        cur = currency_code(currency) if currency else rfm_currency
        return await answer(deps, fmt, "rfm",
                            lambda: rfm_doc(view, w, cur, offset, limit), RFM_COLUMNS)

    @router.get("/analytics/rfm/events",
                summary="The order events behind a customer's RFM scores",
                response_model=DrillPagePublic, responses=drill_responses())
    async def rfm_events(who: Who, w: WindowParam, customer_id: UUID,
                         pg: PageParam) -> OrjsonResponse:
        filters = window_filters(w, customer_id=str(customer_id))
        return await drill_down(deps, "rfm", filters, pg, lambda after, n: view.events(
            [str(customer_id)], cut_of(w), after, n, kinds=ORDER_KINDS))

    return router
