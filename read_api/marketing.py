"""Marketing reads: campaigns and their performance, the events behind each figure, segments
and their members on a day, consent per customer and in total, attributions.

| Route                                              | Roles                          |
|----------------------------------------------------|--------------------------------|
| GET /marketing/campaigns, …/{id}, …/{id}/performance, …/{id}/events | marketing, analyst |
| GET /marketing/segments, …/{id}/members            | marketing, analyst             |
| GET /marketing/consent                             | marketing, analyst             |
| GET /marketing/customers/{id}/consent              | marketing, agent, sales, service |
| GET /marketing/customers/{id}/attributions         | marketing, sales               |

Only ids, states, counts and money leave here (no personal text); the two
per-customer routes are recorded in the read audit like every read of a
customer. The views come from the read store the other routers share; no
aggregate is loaded.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from domain.marketing import InvalidSegmentRuleError
from projections.campaigns.view import METRICS, CampaignsView
from projections.consent.view import ConsentView
from projections.segments.view import SegmentsView
from read_api.dependencies import MinPosition, OrjsonResponse, Principal, ReadDeps, responses

MARKETING_ROLES = ("marketing", "analyst")
CONSENT_ROLES = ("marketing", "agent", "sales", "service")
ATTRIBUTION_ROLES = ("marketing", "sales")
_CAMPAIGN = "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f"
_SEGMENT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
_CUSTOMER = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_EVENT = "7d1e5c2a-3b4f-5a6e-8d9c-0b1a2c3d4e5f"

Limit = Query(ge=1, le=500, description="Page size.")
After = Query(max_length=36, description="The last id of the previous page.")
AsOf = Query(description="The day the rule or consent is read for (UTC; default today).")


class CampaignPublic(BaseModel):
    campaign_id: str
    name: str
    channel: str
    purpose: str
    budget: str = Field(description="Decimal as text.")
    currency: str
    starts_on: str
    ends_on: str
    segment_id: str | None
    code: str
    tracked_number: str | None
    window_days: int = Field(description="Attribution window of this campaign.")
    state: str

    model_config = {"json_schema_extra": {"examples": [{
        "campaign_id": _CAMPAIGN, "name": "Spring offer 2027", "channel": "email",
        "purpose": "marketing", "budget": "1800.00", "currency": "EUR",
        "starts_on": "2027-03-01", "ends_on": "2027-03-31", "segment_id": _SEGMENT,
        "code": "SPRING27", "tracked_number": None, "window_days": 21, "state": "launched"}]}}


class PerformancePublic(BaseModel):
    campaign_id: str
    name: str
    state: str
    budget: str
    currency: str
    queued: int
    sent: int
    delivered: int = Field(description="Sent, and no permanent failure report came back.")
    failed: int
    bounced: int
    suppressed: int = Field(description="Refused at send time: no valid consent then.")
    unsubscribed: int
    responses: int
    responses_by_channel: dict[str, int]
    first_touch_responses: int = Field(description="Responses whose first touch it was.")
    last_touch_responses: int
    cost_per_response: str | None = Field(description="Budget / responses; null without any.")
    opportunities_attributed: int = Field(description=(
        "Opportunities naming it as their source campaign, or without one whose last touch "
        "it was."))
    orders_attributed: int = Field(description=(
        "Orders whose last touch (within the campaign's window) it was; cancelled ones left "
        "out."))
    revenue_attributed: dict[str, str] = Field(description=(
        "Those orders' totals less refunds, per ISO 4217 currency (decimal as text)."))
    roi: str | None = Field(description=(
        "(revenue − budget) / budget in the budget's currency, 4 decimals; null when "
        "`roi_note` says why."))
    roi_note: str | None = Field(description=(
        "Why ROI is null: no budget, or revenue in another currency (no exchange rates)."))
    first_touch_opportunities: int = Field(description=(
        "First-touch model: opportunities naming it as their source campaign, or without "
        "one whose first touch it was."))
    first_touch_orders: int = Field(description=(
        "First-touch model: orders whose first touch (within the campaign's window) it was; "
        "cancelled ones left out."))
    first_touch_revenue: dict[str, str] = Field(description=(
        "First-touch model: those orders' totals less refunds, per currency."))
    first_touch_roi: str | None = Field(description=(
        "First-touch model: ROI as ``roi`` (null for the same reasons)."))

    model_config = {"json_schema_extra": {"examples": [{
        "campaign_id": _CAMPAIGN, "name": "Spring offer 2027", "state": "closed",
        "budget": "1800.00", "currency": "EUR", "queued": 420, "sent": 301, "delivered": 296,
        "failed": 0, "bounced": 5, "suppressed": 119, "unsubscribed": 7, "responses": 24,
        "responses_by_channel": {"email": 19, "web": 5}, "first_touch_responses": 21,
        "last_touch_responses": 24, "cost_per_response": "75.00",
        "opportunities_attributed": 3, "orders_attributed": 9,
        "revenue_attributed": {"EUR": "4950.00"}, "roi": "1.7500", "roi_note": None,
        "first_touch_opportunities": 2, "first_touch_orders": 6,
        "first_touch_revenue": {"EUR": "3120.00"}, "first_touch_roi": "0.7333"}]}}


class FigureEventPublic(BaseModel):
    event_id: str
    customer_id: str
    channel: str
    occurred_at: str


class FigureEventsPublic(BaseModel):
    campaign_id: str
    metric: str
    items: list[FigureEventPublic]
    next_after: str | None = Field(description="Pass as `after` for the next page.")

    model_config = {"json_schema_extra": {"examples": [{
        "campaign_id": _CAMPAIGN, "metric": "response", "items": [{
            "event_id": _EVENT, "customer_id": _CUSTOMER, "channel": "email",
            "occurred_at": "2027-03-04T10:12:00+00:00"}], "next_after": None}, {
        "campaign_id": _CAMPAIGN, "metric": "order", "items": [{
            "event_id": _EVENT, "customer_id": _CUSTOMER, "channel": "web",
            "occurred_at": "2027-03-12T16:40:00+00:00"}], "next_after": None}]}}


class SegmentPublic(BaseModel):
    segment_id: str
    name: str
    rule: dict[str, Any] = Field(description="The rule (README, Marketing: segments).")
    event_id: str = Field(description="The event that defined the current rule.")

    model_config = {"json_schema_extra": {"examples": [{
        "segment_id": _SEGMENT, "name": "Consenting prospects", "rule": {"all": [
            {"lifecycle": ["prospect", "target"]}, {"consent": "email:marketing"},
            {"not": {"last_contact_older_than_days": 365}}]}, "event_id": _EVENT}, {
        "segment_id": _SEGMENT, "name": "Recent frequent big spenders (RFM)",
        "rule": {"rfm": {"r_min": 4, "f_min": 4, "m_min": 4}}, "event_id": _EVENT}]}}


class MembersPublic(BaseModel):
    segment_id: str
    as_of: str
    count: int
    members: list[str] = Field(description="Customer ids, sorted; one page of them.")
    next_after: str | None

    model_config = {"json_schema_extra": {"examples": [{
        "segment_id": _SEGMENT, "as_of": "2026-11-24", "count": 1, "members": [_CUSTOMER],
        "next_after": None}]}}


class ConsentTotalPublic(BaseModel):
    consent_channel: str
    purpose: str
    valid: int
    lapsed: int = Field(description="Given, but past its expiry on `as_of` (not yet recorded).")
    withdrawn: int
    expired: int


class ConsentStatePublic(BaseModel):
    consent_channel: str
    purpose: str
    state: str
    valid: bool
    evidence_kind: str | None
    evidence_id: str | None
    expires_at: str | None
    changed_at: str | None
    event_id: str


class ConsentChangePublic(BaseModel):
    event_id: str
    consent_channel: str
    purpose: str
    state: str
    detail: str | None
    campaign_id: str | None
    occurred_at: str


class CustomerConsentPublic(BaseModel):
    customer_id: str
    as_of: str
    consents: list[ConsentStatePublic]
    changes: list[ConsentChangePublic] = Field(description="The events behind the states.")

    model_config = {"json_schema_extra": {"examples": [{
        "customer_id": _CUSTOMER, "as_of": "2026-11-24", "consents": [{
            "consent_channel": "email", "purpose": "marketing", "state": "given", "valid": True,
            "evidence_kind": "double-opt-in", "evidence_id": _EVENT, "expires_at": None,
            "changed_at": "2026-05-02T08:00:00+00:00", "event_id": _EVENT}],
        "changes": [{"event_id": _EVENT, "consent_channel": "email", "purpose": "marketing",
                     "state": "given", "detail": "double-opt-in", "campaign_id": None,
                     "occurred_at": "2026-05-02T08:00:00+00:00"}]}]}}


class AttributionPublic(BaseModel):
    event_id: str
    kind: str
    channel: str
    occurred_at: str
    campaign_id: str | None
    first_touch_campaign_id: str | None
    last_touch_campaign_id: str | None


def _day(as_of: date | None) -> datetime:
    """The end of ``as_of`` (UTC), so a consent expiring that day counts as gone."""
    day = as_of or datetime.now(UTC).date()
    return datetime.combine(day, time.max, tzinfo=UTC)


def router(deps: ReadDeps, *, rfm_period_days: int = 365, rfm_currency: str = "EUR"
           ) -> APIRouter:
    """``rfm_*``: the period and currency a segment's ``rfm`` rule scores over."""
    router = APIRouter(prefix="/marketing", tags=["marketing"])
    store = deps.views.store
    campaigns, consent = CampaignsView(store), ConsentView(store)
    segments = SegmentsView(store, rfm_period_days, rfm_currency)
    marketing = deps.reader(*MARKETING_ROLES)
    consent_reader = deps.reader(*CONSENT_ROLES)
    attribution_reader = deps.reader(*ATTRIBUTION_ROLES)
    missing = {"s404": f"no campaign {_CAMPAIGN}"}

    @router.get("/campaigns", summary="Campaigns, by id", response_model=list[CampaignPublic],
                response_class=OrjsonResponse, responses=responses(409, 503))
    async def list_campaigns(
        who: Annotated[Principal, Depends(marketing)],
        limit: Annotated[int, Limit] = 100, after: Annotated[str | None, After] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([campaigns], min_position)
        return OrjsonResponse(await deps.call(campaigns.campaigns, limit, after))

    @router.get("/campaigns/{campaign_id}", summary="One campaign",
                response_model=CampaignPublic, response_class=OrjsonResponse,
                responses=responses(404, 409, 503, **missing))
    async def one_campaign(
        campaign_id: UUID, who: Annotated[Principal, Depends(marketing)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([campaigns], min_position)
        return OrjsonResponse(_found(await deps.call(campaigns.campaign, str(campaign_id)),
                                     campaign_id))

    @router.get("/campaigns/{campaign_id}/performance",
                summary=("Sent, delivered, bounced, suppressed, unsubscribed, responses, cost; "
                         "opportunities, orders, revenue and ROI attributed"),
                response_model=PerformancePublic, response_class=OrjsonResponse,
                responses=responses(404, 409, 503, **missing))
    async def performance(
        campaign_id: UUID, who: Annotated[Principal, Depends(marketing)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([campaigns], min_position)
        return OrjsonResponse(_found(await deps.call(campaigns.performance, str(campaign_id)),
                                     campaign_id))

    @router.get("/campaigns/{campaign_id}/events",
                summary="The events behind one figure (drill-down), paged by event id",
                response_model=FigureEventsPublic, response_class=OrjsonResponse,
                responses=responses(400, 404, 409, 503, **missing))
    async def figure_events(
        campaign_id: UUID, who: Annotated[Principal, Depends(marketing)],
        metric: Annotated[str, Query(description=f"One of: {', '.join(METRICS)}.")],
        limit: Annotated[int, Limit] = 100, after: Annotated[str | None, After] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        if metric not in METRICS:
            raise HTTPException(400, detail=f"metric: one of {', '.join(METRICS)}")
        await deps.reached([campaigns], min_position)
        _found(await deps.call(campaigns.campaign, str(campaign_id)), campaign_id)
        items = await deps.call(campaigns.events, str(campaign_id), metric, limit, after)
        return OrjsonResponse({"campaign_id": str(campaign_id), "metric": metric,
                               "items": items, "next_after": _next(items, limit, "event_id")})

    @router.get("/segments", summary="Segments and their rules",
                response_model=list[SegmentPublic], response_class=OrjsonResponse,
                responses=responses(409, 503))
    async def list_segments(
        who: Annotated[Principal, Depends(marketing)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([segments], min_position)
        return OrjsonResponse(await deps.call(segments.segments))

    @router.get("/segments/{segment_id}/members",
                summary="The segment's count and members on a day", response_model=MembersPublic,
                response_class=OrjsonResponse,
                responses=responses(404, 409, 503, s404=f"no segment {_SEGMENT}"))
    async def members(
        segment_id: UUID, who: Annotated[Principal, Depends(marketing)],
        as_of: Annotated[date | None, AsOf] = None,
        limit: Annotated[int, Limit] = 100, after: Annotated[str | None, After] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([segments], min_position)
        found = await deps.call(segments.segment, str(segment_id))
        if found is None:
            raise HTTPException(404, detail=f"no segment {segment_id}")
        try:
            everyone = await deps.call(segments.members, found["rule"], _day(as_of))
        except InvalidSegmentRuleError as exc:  # a rule stored before the language changed
            raise HTTPException(409, detail=str(exc)) from exc
        page = [c for c in everyone if after is None or c > after][:limit]
        return OrjsonResponse({
            "segment_id": str(segment_id), "as_of": _day(as_of).date().isoformat(),
            "count": len(everyone), "members": page,
            "next_after": page[-1] if len(page) == limit and page[-1] != everyone[-1] else None})

    @router.get("/consent", summary="Consent totals per channel and purpose on a day",
                response_model=list[ConsentTotalPublic], response_class=OrjsonResponse,
                responses=responses(409, 503))
    async def consent_totals(
        who: Annotated[Principal, Depends(marketing)],
        as_of: Annotated[date | None, AsOf] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([consent], min_position)
        return OrjsonResponse(await deps.call(consent.totals, _day(as_of)))

    @router.get("/customers/{customer_id}/consent",
                summary="A customer's consents on a day, and the events behind them",
                response_model=CustomerConsentPublic, response_class=OrjsonResponse,
                responses=responses(409, 503), dependencies=deps.audited(consent_reader))
    async def customer_consent(
        customer_id: UUID, who: Annotated[Principal, Depends(consent_reader)],
        as_of: Annotated[date | None, AsOf] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([consent], min_position)
        states = await deps.call(consent.of_customer, str(customer_id), _day(as_of))
        changes = await deps.call(consent.changes, str(customer_id), 500)
        return OrjsonResponse({"customer_id": str(customer_id),
                               "as_of": _day(as_of).date().isoformat(),
                               "consents": states, "changes": changes})

    @router.get("/customers/{customer_id}/attributions",
                summary=("A customer's responses, opportunities and orders with their own, "
                         "first- and last-touch campaigns"),
                response_model=list[AttributionPublic], response_class=OrjsonResponse,
                responses=responses(409, 503), dependencies=deps.audited(attribution_reader))
    async def attributions(
        customer_id: UUID, who: Annotated[Principal, Depends(attribution_reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([campaigns], min_position)
        return OrjsonResponse(await deps.call(campaigns.attributions, str(customer_id)))

    return router


def _found(found: Any, campaign_id: UUID) -> Any:
    if found is None:
        raise HTTPException(404, detail=f"no campaign {campaign_id}")
    return found


def _next(items: list[dict[str, Any]], limit: int, key: str) -> str | None:
    return str(items[-1][key]) if len(items) == limit else None
