"""Response schemas of the value and retention analytics routes (``read_api.analytics_value``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"


class CohortCellPublic(BaseModel):
    cohort: str = Field(description="Month of the members' first purchase (else first "
                                    "`current` stage).")
    period: int = Field(description="Months since the cohort month.")
    month: str
    size: int = Field(description="Members of the cohort.")
    active: int
    churned: int = Field(description="Active the period before, not now.")
    returned: int = Field(description="Not active the period before, active now.")
    churn_rate: float | None = Field(description="churned ÷ active the period before.")
    retention_rate: float | None = Field(description="1 − churn_rate.")
    share: float = Field(description="active ÷ size (the triangle's cell).")


class CohortsPublic(BaseModel):
    figure: str
    from_: str = Field(alias="from", description="Cohorts from this day's month on.")
    until: str
    as_of: str | None
    churn_window_months: int
    rows: list[CohortCellPublic]

    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "figure": "cohorts", "from": "2026-01-01", "until": "2026-06-30", "as_of": None, "churn_window_months": 6,
        "rows": [{"cohort": "2026-01", "period": 1, "month": "2026-02", "size": 5,
                  "active": 4, "churned": 1, "returned": 0, "churn_rate": 0.2,
                  "retention_rate": 0.8, "share": 0.8}]}]}}


class CustomerValuePublic(BaseModel):
    customer_id: str
    currency: str
    orders: int
    first_purchase: str | None
    revenue: str = Field(description="Orders placed less refunds, cancelled ones left out.")
    margin: str = Field(description="revenue × the margin setting.")
    clv: str = Field(description="Historic CLV: each month's margin carried to the as-of "
                                 "month at the annual rate.")


class ValuePagePublic(BaseModel):
    figure: str
    until: str
    as_of: str | None
    currency: str
    margin: str
    discount_rate: str
    total: int = Field(description="Customers with a purchase in the currency.")
    rows: list[CustomerValuePublic]
    next_offset: int | None

    model_config = {"json_schema_extra": {"examples": [{
        "figure": "value", "until": "2026-06-30", "as_of": None, "currency": "EUR",
        "margin": "0.30", "discount_rate": "0.10", "total": 1,
        "rows": [{"customer_id": _CID, "currency": "EUR", "orders": 6,
                  "first_purchase": "2026-01-10", "revenue": "600.00", "margin": "180.00",
                  "clv": "183.63"}], "next_offset": None}]}}


class TierPublic(BaseModel):
    tier: str = Field(description="key, major, ordinary or small.")
    up_to_share: float | None = Field(description="The band's cumulative revenue share "
                                                  "(None: small, the rest).")
    customers: int
    revenue: str
    share: float = Field(description="The tier's share of the revenue.")


class TiersPublic(BaseModel):
    figure: str
    from_: str = Field(alias="from")
    until: str
    as_of: str | None
    currency: str
    rows: list[TierPublic]

    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "figure": "tiers", "from": "2026-01-01", "until": "2026-06-30", "as_of": None,
        "currency": "EUR", "rows": [
            {"tier": "key", "up_to_share": 0.5, "customers": 3, "revenue": "3200.00",
             "share": 0.7143},
            {"tier": "small", "up_to_share": None, "customers": 2, "revenue": "130.00",
             "share": 0.029}]}]}}


class RfmRowPublic(BaseModel):
    customer_id: str
    last_purchase: str
    recency_days: int
    frequency: int
    monetary: str
    currency: str
    r: int
    f: int
    m: int
    rfm: str


class RfmAnalyticsPublic(BaseModel):
    figure: str
    from_: str = Field(alias="from")
    until: str
    as_of: str | None
    period_days: int
    currency: str
    total: int
    rows: list[RfmRowPublic]
    next_offset: int | None

    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "figure": "rfm", "from": "2025-07-01", "until": "2026-06-30", "as_of": None,
        "period_days": 365, "currency": "EUR", "total": 1,
        "rows": [{"customer_id": _CID, "last_purchase": "2026-06-10", "recency_days": 20,
                  "frequency": 6, "monetary": "600.00", "currency": "EUR", "r": 5, "f": 5,
                  "m": 4, "rfm": "554"}], "next_offset": None}]}}
