"""Screen-pop: "who is calling?" — ``GET /screen-pop?number=…`` while the phone rings.

The caller's number in any common format (``020 7946 0018``, ``+44 20 7946
0018``, ``0044…``, ``tel:+44…``) is normalised to E.164 and looked up in the
directory read model (phone and fax numbers, following merges); each match
comes with its summary and its last few touchpoints from the timeline.
An unknown number answers 200 with ``"known": false`` ("unknown caller"):
for a ringing phone that is an answer, not an error. Only read models are
read (sub-millisecond SQLite queries, so no thread hop on SQLite).

Roles as the directory lookup; a partner key sees only its own customers, as
``read_api.partner`` describes (no internal notes, no staff names, counts
without internal notes). Each customer shown is recorded in the read audit
before the answer is sent; an unknown caller records nothing.
"""

# No "from __future__ import annotations": FastAPI must see the route signature evaluated.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from domain.errors import DomainError
from projections.timeline.view import TimelineFilter
from read_api import partner
from read_api.dependencies import (
    DIRECTORY_ROLES,
    OrjsonResponse,
    Principal,
    ReadAudit,
    ReadDeps,
    ReadViews,
    is_partner,
    responses,
)
from read_api.schemas import ScreenPopPublic

RECENT_MAX = 20


def _clean_number(raw: str) -> str:
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


def screen_pop_router(
    views: ReadViews,
    authorize: Callable[..., Any],
    *,
    normalise_phone: Callable[[str], str],
    audit: ReadAudit | None,
    recent: int = 5,
) -> APIRouter:
    router = APIRouter(tags=["read"])
    deps = ReadDeps(views, authorize, audit=audit)
    recent = max(1, min(recent, RECENT_MAX))

    def pop(number: str, who: Principal, limit: int) -> dict[str, Any]:
        partnered = is_partner(who)
        matches = views.directory.lookup(("phone", "fax"), number, partner_id=who.partner_id,
                                         partner_only=partnered)
        out: list[dict[str, Any]] = []
        where = TimelineFilter(include_internal=not partnered)
        for entry in matches:
            root = entry["customer_id"]
            summary: Any = views.summary.summary(root)
            if summary is None:
                continue
            items: list[Any] = views.timeline.page(root, limit=limit, where=where).items
            if partnered:
                summary = partner.summary(summary)
                items = [partner.entry(dict(i)) for i in items]
            out.append({"customer": summary, "recent": items})
        if not out:
            return {"number": number, "known": False, "message": "unknown caller",
                    "matches": []}
        return {"number": number, "known": True, "matches": out}

    @router.get(
        "/screen-pop",
        summary="Who is calling? The caller's customer summary and last touchpoints",
        response_class=OrjsonResponse, response_model=ScreenPopPublic,
        responses=responses(400, 503, s400="not a phone number: 'abc'"),
    )
    async def screen_pop(
        who: Annotated[Principal, Depends(deps.reader(*DIRECTORY_ROLES))],
        request: Request,
        number: Annotated[str, Query(min_length=1, max_length=64, openapi_examples={
            "national": {"value": "020 7946 0018"}, "E.164": {"value": "+442079460018"}})],
        limit: Annotated[int, Query(ge=1, le=RECENT_MAX,
                                    description="How many recent touchpoints")] = recent,
    ) -> OrjsonResponse:
        try:
            e164 = normalise_phone(_clean_number(number))
        except (ValueError, DomainError) as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        found = await deps.call(pop, e164, who, limit)
        read = [m["customer"]["customer_id"] for m in found["matches"]]
        answer = OrjsonResponse(found)  # rendered first: only its bytes wait (timeline.py)
        del found
        await deps.record(request, who, read)  # on record before it is shown
        return answer

    return router
