"""Marketing's routes that need the hub's own links: campaign sends and double opt-in
requests (their emails carry links the hub signs), and the public link pages.

* ``POST /commands/send-campaign`` (marketing): every member of the campaign's
  target segment today gets one ``QueueCampaignEmail`` (Message-ID from the
  campaign and customer, so a repeated send queues only members who are new);
  members without an email address are counted, not queued. Consent is not
  checked here but by the outbox at send time.
* ``POST /commands/request-consent`` (marketing, agent, sales, service, adapter):
  records the request and emails the signed confirmation link.
* ``/marketing/unsubscribe/{token}`` and ``/marketing/confirm/{token}``: see
  ``channels.web.marketing``.

Links need ``TOUCHSTREAM_PUBLIC_BASE_URL``; without it both command routes
answer 409 and nothing is recorded.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from fastapi import APIRouter, Body, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.web.command_routes import RecordedPublic, run_command
from channels.web.marketing import LinkError, MarketingLinks, marketing_links_router
from commands import marketing as cm
from commands.hub import Hub
from commands.messages import nul_path
from commands.records import RecordNotFoundError, load
from commands.replies import Variables
from domain.errors import DomainError
from domain.marketing import CampaignStateError
from domain.replies import template_id
from projections.segments.view import SegmentsView
from touchstream.app import AppContext, RouterFactory

_NS = UUID("c3f5a8e1-4d2b-4f6a-9b8c-7e1d2f3a4b5c")


def marketing_links(ctx: AppContext) -> MarketingLinks:
    return MarketingLinks(secret=ctx.deps.forms.secret,
                          base_url=ctx.settings.core.public_base_url)


class _Input(BaseModel):
    """Strict like every command message: unknown fields and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = nul_path(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'} contains a NUL character (U+0000)")
        return data


class SendCampaignIn(_Input):
    campaign_id: UUID
    from_address: Annotated[str, Field(min_length=3, max_length=500)]
    subject: Annotated[str, Field(max_length=2000)] = Field(
        default="", description="The subject; with a template, it overrides the template's.")
    body_text: Annotated[str, Field(max_length=64_000)] = Field(
        default="", description="The text; or give template_id.")
    template_id: UUID | None = Field(default=None, description=(
        "A message template (see `/templates/{name}`) rendered for each member in their own "
        "language instead of subject/body_text."))
    variables: Variables = Field(default_factory=dict, description="The template's variables.")

    @model_validator(mode="after")
    def _text_or_template(self) -> "SendCampaignIn":
        if self.template_id is None and not (self.subject and self.body_text):
            raise ValueError("give subject and body_text, or a template_id to render them from")
        return self


class SendCampaignPublic(BaseModel):
    campaign_id: str
    segment_id: str
    members: int = Field(description="Members of the target segment today.")
    queued: int = Field(description="Emails queued now.")
    already_queued: int = Field(description="Members this campaign had queued before.")
    without_email: int = Field(description="Members with no email address (not queued).")


class RequestConsentIn(_Input):
    customer_id: UUID
    purpose: Literal["marketing", "newsletter"]
    evidence_kind: Literal["form-submission", "call"] = "form-submission"
    evidence_id: Annotated[str, Field(min_length=1, max_length=500)]
    from_address: Annotated[str, Field(min_length=3, max_length=500)]


@dataclass(frozen=True)
class SendReport:
    campaign_id: str
    segment_id: str
    members: int
    queued: int
    already_queued: int
    without_email: int


def send_campaign(hub: Hub, segments: SegmentsView, links: MarketingLinks, body: SendCampaignIn,
                  actor: str, now: datetime) -> SendReport:
    """Queue the campaign's email to every member of its target segment on ``now``."""
    links.require()
    campaign = load(hub.context, "campaign", body.campaign_id)
    campaign.check_sendable(now)
    if campaign.segment_id is None:
        raise CampaignStateError(f"campaign {body.campaign_id} has no target segment")
    segment = segments.segment(campaign.segment_id)
    if segment is None:
        raise RecordNotFoundError(f"no segment {campaign.segment_id} in the read model")
    members = segments.members(segment["rule"], now)
    queued = already = without = 0
    for member in members:
        customer = UUID(member)
        try:
            result = hub.execute(cm.QueueCampaignEmail(
                customer_id=customer, campaign_id=body.campaign_id,
                from_address=body.from_address, subject=body.subject, body_text=body.body_text,
                template_id=body.template_id, variables=body.variables,
                unsubscribe_url=links.unsubscribe_url(customer, body.campaign_id,
                                                      campaign.purpose),
                actor=actor))
        except cm.NoEmailAddressError:
            without += 1
            continue
        if result.duplicate:
            already += 1
        else:
            queued += 1
    return SendReport(str(body.campaign_id), campaign.segment_id, len(members), queued,
                      already, without)


def _send_templated_example() -> dict[str, Any]:
    return {"campaign_id": "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f",
            "from_address": "news@shop.example", "template_id": str(template_id("spring-offer")),
            "variables": {"offer": "20% off boiler servicing"}}


def _send_example() -> dict[str, Any]:
    return {"campaign_id": "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f",
            "from_address": "news@shop.example", "subject": "Our spring offer",
            "body_text": "Hello,\n\nthis season's offers are in.\n"}


def _request_example() -> dict[str, Any]:
    return {"customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "purpose": "newsletter",
            "evidence_kind": "form-submission", "evidence_id": "sub-2026-0042",
            "from_address": "news@shop.example"}


def marketing_command_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/commands", tags=["commands"])
    links = marketing_links(ctx)
    sales = ctx.deps.settings.sales
    segments = SegmentsView(ctx.deps.read_store, sales.rfm_period_days, sales.rfm_currency)
    sender = ctx.authorize("marketing")
    requester = ctx.authorize("marketing", "agent", "sales", "service", "adapter")

    @router.post("/send-campaign", response_model=SendCampaignPublic, status_code=200,
                 summary="Queue a campaign's email to its target segment",
                 responses={404: {"description": "No such campaign or segment"},
                            409: {"description": "Not launched, not email, no segment, or no "
                                                 "public base URL for the unsubscribe links"}})
    def send(body: Annotated[SendCampaignIn, Body(openapi_examples={
                 "example": {"value": _send_example()},
                 "templated": {"summary": "Rendered from a message template, per language",
                               "value": _send_templated_example()}})],
             who: Annotated[Any, Depends(sender)]) -> SendCampaignPublic:
        try:
            report = send_campaign(ctx.hub(), segments, links, body, f"api:{who.name}",
                                   datetime.now(UTC))
        except LinkError as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc
        except RecordNotFoundError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        except DomainError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return SendCampaignPublic(**report.__dict__)

    @router.post("/request-consent", response_model=RecordedPublic, status_code=201,
                 summary="Start a double opt-in: email the signed confirmation link",
                 responses={409: {"description": "No email address, or no public base URL"},
                            404: {"description": "No such customer"}})
    def request(body: Annotated[RequestConsentIn, Body(openapi_examples={
                    "example": {"value": _request_example()}})],
                who: Annotated[Any, Depends(requester)], response: Response) -> RecordedPublic:
        request_id = uuid5(_NS, f"{body.customer_id}|{body.purpose}|{body.evidence_kind}|"
                                f"{body.evidence_id}")
        try:
            url = links.confirm_url(body.customer_id, request_id, time.time())
        except LinkError as exc:
            raise HTTPException(exc.status, detail=str(exc)) from exc
        result = run_command(ctx.hub(), cm.RequestConsent(
            customer_id=body.customer_id, request_id=request_id, purpose=body.purpose,
            evidence_kind=body.evidence_kind, evidence_id=body.evidence_id,
            from_address=body.from_address, confirm_url=url, actor=f"api:{who.name}"))
        if result.duplicate:
            response.status_code = 200
        return RecordedPublic.of(result)

    return router


def marketing_routers() -> list[RouterFactory]:
    """The routers to mount: the two link-signing commands and the public link pages."""
    return [marketing_command_router,
            lambda ctx: marketing_links_router(ctx.hub, marketing_links(ctx), time.time)]
