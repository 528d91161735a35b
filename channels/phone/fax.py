"""Fax provider webhooks: inbound faxes (with a media URL) and outbound fax results.

Signed like the CTI webhook (HMAC-SHA256 over ``<timestamp>.<body>``). The
document is fetched only once the signature is valid, under ``media``'s SSRF
rules, and stored as a content-addressed blob; the event carries its hash.
A fax the provider reports as partial (or with fewer pages than expected) is
recorded with status ``partial``.

Outbound faxes: the intent is recorded when staff send one (``record fax
--direction outbound --status queued``, key ``fax:<id>``); the provider's
result arrives here and is recorded under its own key, so intent and result
are two events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from channels.blobs import BlobStore
from channels.phone.config import FaxConfig
from channels.phone.media import (
    MediaPolicy,
    MediaRefusedError,
    MediaUnavailableError,
    fetch_media,
)
from channels.phone.signed import WEBHOOK_RESPONSES, signed_json_body
from channels.phone.steps import accepted, describe
from commands import messages as m
from commands.hub import CustomerNotFoundError, Hub
from commands.ports import Recorded
from domain.errors import DomainError

Text = Annotated[str, Field(min_length=1, max_length=500)]
HubProvider = Callable[[], Hub]
Fetch = Callable[[str, MediaPolicy], Any]


class InboundFax(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    fax_id: Text = Field(alias="faxId")
    from_number: Text | None = Field(default=None, alias="from")
    to_number: Text | None = Field(default=None, alias="to")
    status: Literal["received", "partial", "failed"] = "received"
    pages: Annotated[int, Field(ge=0, le=10_000)] | None = None
    pages_expected: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, alias="pagesExpected")
    media_url: Annotated[str, Field(max_length=2000)] | None = Field(default=None,
                                                                     alias="mediaUrl")
    received_at: AwareDatetime | None = Field(default=None, alias="receivedAt")


class OutboundFaxResult(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    fax_id: Text = Field(alias="faxId")
    to_number: Text = Field(alias="to")
    from_number: Text | None = Field(default=None, alias="from")
    status: Literal["delivered", "partial", "failed"]
    pages: Annotated[int, Field(ge=0, le=10_000)] | None = None
    completed_at: AwareDatetime | None = Field(default=None, alias="completedAt")


def _status(fax: InboundFax) -> str:
    if fax.status == "failed":
        return "failed"
    short = (fax.pages_expected is not None and fax.pages is not None
             and fax.pages < fax.pages_expected)
    return "partial" if fax.status == "partial" or short else "complete"


def _execute(hub: Hub, cmd: m.RecordFax) -> Recorded:
    try:
        return hub.execute(cmd)
    except CustomerNotFoundError as exc:
        raise HTTPException(422, str(exc)) from exc
    except DomainError as exc:
        raise HTTPException(422, str(exc)) from exc


def fax_router(get_hub: HubProvider, config: FaxConfig, blobs: BlobStore,
               fetch: Fetch = fetch_media) -> APIRouter:
    """``POST /webhooks/fax/inbound`` and ``POST /webhooks/fax/outbound-status``."""
    router = APIRouter(prefix="/webhooks/fax", tags=["webhooks: fax"],
                       responses=WEBHOOK_RESPONSES)
    policy = MediaPolicy(allowed_hosts=config.allowed_hosts,
                         max_bytes=config.max_document_bytes,
                         allow_private_addresses=config.allow_private_addresses,
                         require_https=config.require_https,
                         timeout_s=config.fetch_timeout_s)

    async def verified(request: Request) -> bytes:
        return await signed_json_body(request, config, "fax webhooks")

    def store_document(url: str, owner: str | None) -> tuple[str, int, str | None]:
        try:
            media = fetch(url, policy)
        except MediaRefusedError as exc:
            raise HTTPException(422, f"media not fetched: {exc}") from exc
        except MediaUnavailableError as exc:
            # The provider retries on 5xx; by then the document may be reachable.
            raise HTTPException(502, f"media not available yet: {exc}") from exc
        # Under the sender's number: the same document faxed by two people is two blobs.
        return blobs.put(media.data, owner=owner), len(media.data), media.content_type

    def record_inbound(hub: Hub, fax: InboundFax) -> Recorded:
        digest = size = content_type = None
        if fax.media_url and fax.status != "failed":
            owner = f"phone:{fax.from_number}" if fax.from_number else None
            digest, size, content_type = store_document(fax.media_url, owner)
        cmd = m.RecordFax(
            fax_id=fax.fax_id, direction="inbound", from_number=fax.from_number,
            to_number=fax.to_number, pages=fax.pages, document_sha256=digest,
            document_size=size, content_type=content_type,
            status=_status(fax),  # type: ignore[arg-type]
            occurred_at=fax.received_at, source_key=f"fax-in:{fax.fax_id}", actor="fax-provider",
        )
        return _execute(hub, cmd)

    @router.post("/inbound", summary="Inbound fax received by the provider")
    async def inbound(
        request: Request, hub: Hub = Depends(get_hub)  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, Any]:
        body = await verified(request)
        try:
            fax = InboundFax.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, describe(exc)) from exc
        return accepted(await run_in_threadpool(record_inbound, hub, fax))

    @router.post("/outbound-status", summary="Result of an outbound fax")
    async def outbound_status(
        request: Request, hub: Hub = Depends(get_hub)  # noqa: B008 - FastAPI's idiom
    ) -> dict[str, Any]:
        body = await verified(request)
        try:
            result = OutboundFaxResult.model_validate_json(body)
            cmd = m.RecordFax(
                fax_id=result.fax_id, direction="outbound", to_number=result.to_number,
                from_number=result.from_number, pages=result.pages,
                status="complete" if result.status == "delivered" else result.status,
                occurred_at=result.completed_at, actor="fax-provider",
                source_key=f"fax-out:{result.fax_id}:{result.status}",
            )
        except ValidationError as exc:
            raise HTTPException(422, describe(exc)) from exc
        return accepted(await run_in_threadpool(_execute, hub, cmd))

    return router

