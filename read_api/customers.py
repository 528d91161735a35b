"""``GET /customers/search`` (prefix search, paged) and ``/customers/lookup`` (exact).

A lookup identifies a person by number or address: each customer it answers with is
recorded in the read audit. A search page lists directory entries by a prefix and is
not recorded (opening any of them, by timeline, summary or event, is).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from projections.directory.view import search_key
from read_api.cursors import CursorError, read_search_cursor, search_cursor
from read_api.dependencies import (
    DIRECTORY_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    responses,
)
from read_api.schemas import DirectoryResultsPublic, SearchResultsPublic


def router(deps: ReadDeps, *, normalise_phone: Callable[[str], str],
           normalise_email: Callable[[str], str]) -> APIRouter:
    router = APIRouter(tags=["read"])
    directory = deps.views.directory

    @router.get(
        "/customers/search",
        summary="Find customers by a prefix of name, company, email or phone number",
        response_class=OrjsonResponse, response_model=SearchResultsPublic,
        responses=responses(400, 409, 503, s400="cursor is not one this API returned for "
                                                "this search"),
    )
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=200, openapi_examples={
            "name": {"value": "lovel"}, "number": {"value": "+44 20 7946"},
            "email": {"value": "ada@"}})],
        who: Annotated[Principal, Depends(deps.reader(*DIRECTORY_ROLES))],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=1000, description=(
            "`next_cursor` of the previous page (same `q`)."))] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        try:
            after = read_search_cursor(cursor, q) if cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        await deps.reached([directory], min_position)
        page = await deps.call(lambda: directory.search_page(
            q, limit=limit, after=after, partner_id=who.partner_id,
            partner_only=is_partner(who)))
        following = None
        if page.more:
            following = search_cursor(q, *search_key(page.items[-1]))
        return OrjsonResponse({"items": page.items, "next_cursor": following,
                               "incomplete": page.incomplete})

    @router.get(
        "/customers/lookup",
        summary="Exact lookup by phone number (screen-pop) or email address, following merges",
        response_class=OrjsonResponse, response_model=DirectoryResultsPublic,
        responses=responses(400, 404, 409, 503, s400="give exactly one of phone= or email=",
                            s404="no customer with phone +442079460018"),
    )
    async def lookup(
        who: Annotated[Principal, Depends(deps.reader(*DIRECTORY_ROLES))],
        request: Request,
        phone: Annotated[str | None, Query(min_length=1, max_length=64, openapi_examples={
            "E.164": {"value": "+442079460018"}, "national": {"value": "020 7946 0018"}})] = None,
        email: Annotated[str | None, Query(min_length=3, max_length=320, openapi_examples={
            "email": {"value": "ada@example.com"}})] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        if (phone is None) == (email is None):
            raise HTTPException(400, detail="give exactly one of phone= or email=")
        try:
            if phone is not None:
                kinds, value = ("phone", "fax"), normalise_phone(phone)
            else:
                kinds, value = ("email",), normalise_email(email or "")
        except Exception as exc:  # the normalisers raise domain or value errors
            raise HTTPException(400, detail=str(exc)) from exc
        await deps.reached([directory], min_position)
        items = await deps.call(lambda: directory.lookup(
            kinds, value, partner_id=who.partner_id, partner_only=is_partner(who)))
        if not items:
            raise HTTPException(404, detail=f"no customer with {kinds[0]} {value}")
        read = [i["customer_id"] for i in items]
        answer = OrjsonResponse({"items": items})  # rendered first: only its bytes wait
        del items
        await deps.record(request, who, read)  # on record before it is shown
        return answer

    return router
