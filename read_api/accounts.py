"""``GET /accounts``, ``/accounts/{id}``, ``/accounts/{id}/timeline``, ``/customers/{id}/accounts``:
the account directory, one account with its hierarchy and contact periods, and the
account timeline (its contacts' events inside their periods and its own, newest first).

A partner key sees only the accounts assigned to its partner (any other id
answers 404 like a missing one), and in their timelines no internal notes and
no staff names. The timeline shows contacts' personal data: each contact on a
page is recorded in the read audit before the page is sent.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from projections.timeline.view import Cursor
from read_api import partner
from read_api.account_schemas import (
    AccountDetailPublic,
    AccountPagePublic,
    AccountTimelinePagePublic,
    AccountTimelineQuery,
    ContactPeriodPublic,
)
from read_api.cursors import (
    CursorError,
    account_timeline_cursor,
    accounts_cursor,
    read_account_timeline_cursor,
    read_accounts_cursor,
)
from read_api.dependencies import (
    ACCOUNT_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    responses,
    scoped,
)
from read_api.timeline import timeline_filter


def _no_account(account_id: Any) -> HTTPException:
    return HTTPException(404, detail=f"no account {account_id}")


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["accounts"])
    view = deps.views.accounts
    reader = deps.reader(*ACCOUNT_ROLES)

    def visible(account_id: UUID, who: Principal) -> str:
        found = view.resolve(str(account_id))
        if found is None or (is_partner(who) and found.partner_id != who.partner_id):
            raise _no_account(account_id)
        return found.account_id

    @router.get("/accounts", summary="Accounts by name (a partner key: its own accounts)",
                response_class=OrjsonResponse, response_model=AccountPagePublic,
                responses=responses(400, 409, 503))
    async def directory(
        who: Annotated[Principal, Depends(reader)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        owner: Annotated[str | None, Query(max_length=100)] = None,
        parent_id: UUID | None = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        try:
            after = read_accounts_cursor(cursor) if cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        await deps.reached([view], min_position)
        items, more = await deps.call(lambda: view.directory(
            limit=limit, after=after, owner=owner,
            parent_id=str(parent_id) if parent_id else None,
            partner_id=who.partner_id if is_partner(who) else None))
        following = accounts_cursor(items[-1]["name"], items[-1]["account_id"]) if more else None
        return OrjsonResponse({"items": items, "next_cursor": following})

    @router.get("/accounts/{account_id}",
                summary="An account: hierarchy (ancestors, children) and every contact period",
                response_class=OrjsonResponse, response_model=AccountDetailPublic,
                responses=responses(404, 409, 503, s404=f"no account {UUID(int=7)}"))
    async def detail(
        account_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)

        def work() -> Any:
            found = view.detail(visible(account_id, who))
            if found is None:
                raise _no_account(account_id)
            return found

        return OrjsonResponse(await deps.call(work))

    @router.get("/accounts/{account_id}/timeline",
                summary="The account's timeline: its contacts' events while they acted for "
                        "it, and its own, newest first",
                response_class=OrjsonResponse, response_model=AccountTimelinePagePublic,
                responses=responses(400, 404, 409, 503, s400="cursor is not one this API "
                                    "returned for this account-timeline"))
    async def timeline(
        account_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        params: Annotated[AccountTimelineQuery, Query()],
        request: Request,
    ) -> OrjsonResponse:
        asked = str(account_id)
        where = timeline_filter(params, who)
        try:
            after = read_account_timeline_cursor(params.cursor, asked) if params.cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        await deps.reached([view, view.timeline], params.min_position)

        def work() -> dict[str, Any]:
            page = view.page(visible(account_id, who), limit=params.limit, cursor=after,
                             where=where)
            items: list[Any] = page.items
            if is_partner(who):
                items = [partner.entry(dict(i)) for i in items]
            following = (account_timeline_cursor(Cursor.decode(page.next_cursor), asked)
                         if page.next_cursor else None)
            return {"account_id": asked, "items": items, "next_cursor": following,
                    "as_of": page.as_of}

        page = await deps.call(work)
        await deps.record(request, who, [i["customer_id"] for i in page["items"]
                                         if i["customer_id"] is not None])
        return OrjsonResponse(page)

    @router.get("/customers/{customer_id}/accounts",
                summary="The accounts a person acts or acted for, with the periods",
                response_class=OrjsonResponse, response_model=list[ContactPeriodPublic],
                responses=responses(404, 409, 503), dependencies=deps.audited(reader))
    async def accounts_of(
        customer_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)

        def work() -> Any:
            found = scoped(deps.views.timeline.resolve(str(customer_id)), who, customer_id)
            return view.links_of(found.root)

        return OrjsonResponse(await deps.call(work))

    return router
