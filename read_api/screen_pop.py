"""Screen-pop: "who is calling?" — ``GET /screen-pop?number=…`` while the phone rings.

The caller's number in any common format (``020 7946 0018``, ``+44 20 7946
0018``, ``0044…``, ``tel:+44…``) is normalised to E.164 and looked up in the
directory read model (phone and fax numbers, following merges); each match
comes with its summary and its last few touchpoints from the timeline.
An unknown number answers 200 with ``"known": false`` ("unknown caller"):
for a ringing phone that is an answer, not an error. Only read models are
read (sub-millisecond SQLite queries, so no thread hop on SQLite).

Roles as the directory lookup; a partner key sees only its own customers and
never internal notes or who on the staff acted.
"""

# No "from __future__ import annotations": FastAPI must see the route signature evaluated.

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from domain.errors import DomainError
from projections.timeline.view import TimelineFilter
from projections.views import ProjectionNotReadyError
from read_api.routes import DIRECTORY_ROLES, PARTNER_HIDDEN, ReadViews

RECENT_MAX = 20


class _Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _is_partner(who: Any) -> bool:
    return getattr(who, "role", None) == "partner"


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
    recent: int = 5,
) -> APIRouter:
    router = APIRouter(tags=["read"])
    threaded = views.store.dialect != "sqlite"
    recent = max(1, min(recent, RECENT_MAX))

    def pop(number: str, who: Any, limit: int) -> dict[str, Any]:
        partner = _is_partner(who)
        matches = views.directory.lookup(("phone", "fax"), number,
                                         partner_id=getattr(who, "partner_id", None),
                                         partner_only=partner)
        out: list[dict[str, Any]] = []
        where = TimelineFilter(include_internal=not partner)
        for entry in matches:
            root = entry["customer_id"]
            summary: Any = views.summary.summary(root)
            if summary is None:
                continue
            if partner:
                summary = {**summary, "notes": {"shared": summary["notes"].get("shared", 0)}}
            items: list[Any] = views.timeline.page(root, limit=limit, where=where).items
            if partner:
                items = [{k: (None if k in PARTNER_HIDDEN else v) for k, v in dict(i).items()}
                         for i in items]
            out.append({"customer": summary, "recent": items})
        if not out:
            return {"number": number, "known": False, "message": "unknown caller",
                    "matches": []}
        return {"number": number, "known": True, "matches": out}

    @router.get(
        "/screen-pop",
        summary="Who is calling? The caller's customer summary and last touchpoints",
        response_class=_Json,
    )
    async def screen_pop(
        who: Annotated[Any, Depends(authorize(*DIRECTORY_ROLES))],
        number: Annotated[str, Query(min_length=1, max_length=64, openapi_examples={
            "national": {"value": "020 7946 0018"}, "E.164": {"value": "+442079460018"}})],
        limit: Annotated[int, Query(ge=1, le=RECENT_MAX,
                                    description="How many recent touchpoints")] = recent,
    ) -> Response:
        try:
            e164 = normalise_phone(_clean_number(number))
        except (ValueError, DomainError) as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        try:
            if threaded:
                body = await run_in_threadpool(pop, e164, who, limit)
            else:
                body = pop(e164, who, limit)
        except ProjectionNotReadyError as exc:
            raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from exc
        return _Json(body)

    return router
