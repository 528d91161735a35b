"""Response schemas of the sales read routes (what ``read_api.sales`` answers, with examples)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_CUSTOMER = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_OPP = "5d1e8c2a-7b3f-4e19-9c60-2a8f4b1d7e33"
_EVENT = "9d4f1b0e-2c7a-5e3b-8f61-0a2b3c4d5e6f"


def _example(**values: object) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]})


class PipelineGroupPublic(BaseModel):
    stage: str | None = None
    owner: str | None = None
    close_month: str | None = None
    currency: str
    count: int
    amount: str = Field(description="Σ amount of the open opportunities (decimal string).")
    weighted: str = Field(description="Σ amount × stage probability ÷ 100.")
    model_config = _example(stage="proposal", currency="EUR", count=4, amount="61200.00",
                            weighted="30600.00")


class PipelinePublic(BaseModel):
    by: str
    items: list[PipelineGroupPublic]


class ForecastRowPublic(BaseModel):
    close_month: str
    owner: str
    currency: str
    count: int
    amount: str
    weighted: str
    model_config = _example(close_month="2027-02", owner="mia", currency="EUR", count=3,
                            amount="42000.00", weighted="25600.00")


class ForecastPublic(BaseModel):
    items: list[ForecastRowPublic]


class StageStatsPublic(BaseModel):
    stage: str
    probability: int
    entered: int = Field(description="Times an opportunity entered the stage.")
    left: int
    advanced: int = Field(description="Left for a stage of higher probability (won included).")
    conversion_rate: float | None = Field(description="advanced ÷ left.")
    average_days: float | None = Field(description="Average days in the stage (visits left).")
    model_config = _example(stage="proposal", probability=50, entered=40, left=32, advanced=20,
                            conversion_rate=0.625, average_days=17.4)


class OutcomesPublic(BaseModel):
    open: int
    won: int
    lost: int
    win_rate: float | None = Field(description="won ÷ (won + lost).")
    average_sales_cycle_days: float | None = Field(description="Open to won, on average.")
    model_config = _example(open=31, won=52, lost=37, win_rate=0.5843,
                            average_sales_cycle_days=48.2)


class StagesPublic(BaseModel):
    stages: list[StageStatsPublic]
    outcomes: OutcomesPublic


class OpportunityPublic(BaseModel):
    opportunity_id: str
    customer_id: str
    title: str | None = Field(description="None after the customer's erasure.")
    status: str = Field(description="open, won or lost.")
    stage: str
    probability: int
    amount: str
    currency: str
    owner: str
    expected_close: str
    opened_at: str | None
    stage_since: str | None
    closed_at: str | None
    source_campaign_id: str | None
    account_id: str | None
    order_reference: str | None
    loss_reason: str | None
    model_config = _example(
        opportunity_id=_OPP, customer_id=_CUSTOMER, title="Boiler replacement, 3 sites",
        status="open", stage="proposal", probability=50, amount="18500.00", currency="EUR",
        owner="mia", expected_close="2027-02-28", opened_at="2026-11-02T10:00:00+00:00",
        stage_since="2026-11-20T15:30:00+00:00", closed_at=None,
        source_campaign_id="spring-2027", account_id=None, order_reference=None,
        loss_reason=None)


class OpportunitiesPublic(BaseModel):
    customer_id: str
    items: list[OpportunityPublic]


class OrderPublic(BaseModel):
    order_number: str
    customer_id: str
    currency: str
    total: str
    lines: int
    placed_at: str | None
    paid: str
    refunded: str
    shipped_at: str | None
    cancelled_at: str | None
    opportunity_id: str | None
    status: str = Field(description="placed, paid, shipped, partly returned, returned, "
                                    "cancelled.")
    model_config = _example(
        order_number="SO-2027-00042", customer_id=_CUSTOMER, currency="EUR", total="2460.00",
        lines=2, placed_at="2027-02-20T10:15:00+00:00", paid="2460.00", refunded="0.00",
        shipped_at="2027-02-22T08:00:00+00:00", cancelled_at=None, opportunity_id=_OPP,
        status="shipped")


class OrdersPublic(BaseModel):
    customer_id: str
    items: list[OrderPublic]


class RevenueRowPublic(BaseModel):
    month: str | None = None
    customer_id: str | None = None
    currency: str
    orders: int = Field(description="Orders placed (cancelled ones left out).")
    gross: str = Field(description="Σ order totals.")
    returns: int = Field(description="Refunds recorded.")
    refunded: str
    revenue: str = Field(description="gross − refunded.")
    average_order_value: str | None = Field(description="revenue ÷ orders.")
    model_config = _example(month="2027-02", currency="EUR", orders=12, gross="30400.00",
                            returns=1, refunded="300.00", revenue="30100.00",
                            average_order_value="2508.33")


class RevenuePublic(BaseModel):
    items: list[RevenueRowPublic]
    next_after: str | None = Field(None, description="Per customer: pass as ?after= for the "
                                                     "next page; null on the last page.")


class RfmPublic(BaseModel):
    customer_id: str
    as_of: str
    last_purchase: str
    recency_days: int
    frequency: int
    monetary: str
    currency: str
    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)
    rfm: str = Field(description="The three scores as one cell, e.g. 545.")
    model_config = _example(customer_id=_CUSTOMER, as_of="2026-11-30",
                            last_purchase="2026-11-02", recency_days=28, frequency=4,
                            monetary="9640.00", currency="EUR", r=4, f=5, m=4, rfm="454")


class RfmPagePublic(BaseModel):
    as_of: str
    period_days: int
    currency: str
    items: list[RfmPublic]
    next_after: str | None = Field(description="Pass as ?after= for the next page.")


class ContributingEventPublic(BaseModel):
    event_id: str
    customer_id: str
    position: int
    kind: str
    opportunity_id: str | None = None
    order_number: str | None = None
    model_config = _example(event_id=_EVENT, customer_id=_CUSTOMER, position=1042,
                            kind="opportunity_stage_moved", opportunity_id=_OPP)


class ContributingEventsPublic(BaseModel):
    items: list[ContributingEventPublic]
    next_after: int | None = Field(description="Pass as ?after= for the next page (a log "
                                               "position); null on the last page.")


class LifecycleFlowPublic(BaseModel):
    month: str
    to_stage: str
    count: int = Field(description="Changes into the stage that month (registrations too).")
    model_config = _example(month="2026-10", to_stage="current", count=7)


class LifecyclePublic(BaseModel):
    as_of: str
    counts: dict[str, int] = Field(description="Customers per stage at the end of `as_of`.")
    flows: list[LifecycleFlowPublic]
    model_config = _example(as_of="2026-11-30", counts={"prospect": 41, "target": 22,
                                                        "current": 63, "lost": 9},
                            flows=[{"month": "2026-10", "to_stage": "current", "count": 7}])


class StageChangePublic(BaseModel):
    event_id: str
    customer_id: str
    at: str | None
    from_stage: str | None = Field(description="None for the registration.")
    to_stage: str
    model_config = _example(event_id=_EVENT, customer_id=_CUSTOMER,
                            at="2026-10-02T11:00:00+00:00", from_stage="target",
                            to_stage="current")


class CustomerLifecyclePublic(BaseModel):
    customer_id: str
    items: list[StageChangePublic]
