"""``GET /events/{id}`` and ``/events/{id}/body``: one event in full, and its text body.

Bodies are served as ``text/plain`` with ``X-Content-Type-Options: nosniff`` and a
``Content-Security-Policy`` that allows nothing, so stored HTML (an email's) is
never rendered or run by a browser.

Each answer is recorded in the read audit as a read of the customer the event
belongs to now (the root of its merge group), before it is sent.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from read_api import partner
from read_api.dependencies import (
    TIMELINE_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    ReadViews,
    is_partner,
    responses,
)
from read_api.schemas import EventDetailPublic

BODY_HEADERS = {"X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox"}


def visible_detail(views: ReadViews, event_id: str, who: Principal) -> tuple[Any, str]:
    """The event, if the caller may see it (404 alike for missing and out of scope), and the
    customer it belongs to now."""
    detail = views.timeline.detail(event_id)
    if detail is None:
        raise HTTPException(404, detail=f"no event {event_id}")
    found = views.timeline.resolve(detail.entry["customer_id"])
    if (found is None or (is_partner(who) and (found.partner_id != who.partner_id
                                                or detail.entry["internal"]))):
        raise HTTPException(404, detail=f"no event {event_id}")
    return detail, found.root


def router(deps: ReadDeps, blob_reader: Callable[[str], bytes] | None = None) -> APIRouter:
    router = APIRouter(tags=["read"])
    views = deps.views
    reader = deps.reader(*TIMELINE_ROLES)

    @router.get(
        "/events/{event_id}",
        summary="One event in full (bodies included), as its timeline entry plus every field",
        description="Partner keys see the fields listed in `read_api.partner.EVENT_FIELDS` "
                    "only (no staff names, source keys or blob references).",
        response_class=OrjsonResponse, response_model=EventDetailPublic,
        responses=responses(404, 409, 503, s404="no event 9d4f1b0e-2c7a-5e3b-8f61-0a2b3c4d5e6f"),
    )
    async def event_detail(
        event_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        request: Request,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([views.timeline], min_position)
        detail, customer = await deps.call(visible_detail, views, str(event_id), who)
        data, entry = detail.data, dict(detail.entry)
        if is_partner(who):
            data, entry = partner.event_data(data), partner.entry(entry)
        answer = OrjsonResponse({"entry": entry, "data": data})  # only its bytes wait
        del detail, data, entry
        await deps.record(request, who, [customer])  # on record before it is shown
        return answer

    @router.get(
        "/events/{event_id}/body",
        summary="The full text body of an email (or other event with a body)",
        response_class=Response,
        responses={200: {"description": "The body as plain text (never rendered: nosniff)",
                         "content": {"text/plain": {"schema": {"type": "string"},
                                                    "example": "Hello, I was charged twice…"}},
                         "headers": {"X-Content-Type-Options": {
                             "schema": {"type": "string", "enum": ["nosniff"]}}}},
                   **responses(404, 409, 503, s404="event 9d4f1b0e-2c7a-5e3b-8f61-0a2b3c4d5e6f "
                                                   "has no body")},
    )
    async def event_body(
        event_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        request: Request,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> Response:
        await deps.reached([views.timeline], min_position)
        detail, customer = await deps.call(visible_detail, views, str(event_id), who)
        text = detail.data.get("body_text")
        ref = detail.data.get("body_ref")
        if not text and ref and blob_reader is not None:
            try:
                raw = await run_in_threadpool(blob_reader, ref)
            except (KeyError, OSError, ValueError) as exc:
                raise HTTPException(404, detail=f"body {ref} of event {event_id} is not in "
                                                "the blob store") from exc
            text = raw.decode("utf-8", errors="replace")
        if not text:
            raise HTTPException(404, detail=f"event {event_id} has no body")
        answer = Response(text, media_type="text/plain; charset=utf-8", headers=BODY_HEADERS)
        del detail, text
        await deps.record(request, who, [customer])  # on record before it is shown
        return answer

    return router
