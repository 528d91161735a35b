"""``GET /console/accounts/{id}``: an account's page — its facts, hierarchy and every
contact period (each contact linked to their customer page) — and
``GET /console/accounts/{id}/timeline``: its rolled-up timeline (its contacts' events
while they acted for it, and its own), newest first, a page at a time.

The same roles, partner scope and read audit as ``GET /accounts/{id}`` and
``…/timeline`` (``read_api.accounts``): another partner's account answers 404 like a
missing one; contacts' names and events are personal data, so every contact shown is
recorded in the read audit before the page is sent. A customer's own page lists the
accounts they act for (``panels/accounts.html``).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from projections.timeline.view import Cursor, TimelineFilter
from read_api import partner
from read_api.cursors import CursorError, account_timeline_cursor, read_account_timeline_cursor
from read_api.dependencies import ACCOUNT_ROLES, Principal, is_partner
from touchstream.console.context import Console

#: Contacts named on an account page (a summary read each); the rest are counted.
MAX_CONTACTS = 100
PAGE = 50


def _missing(account_id: Any) -> HTTPException:
    return HTTPException(404, detail=f"no account {account_id}")


def accounts_of(console: Console, who: Principal, root: str) -> list[dict[str, Any]] | None:
    """The accounts the customer ``root`` acts or acted for, with their names, for the
    customer page's panel (None for a role that may not read accounts)."""
    if who.role != "admin" and who.role not in ACCOUNT_ROLES:
        return None
    view = console.reads.views.accounts
    out = []
    for link in view.links_of(root):
        found = view.resolve(link["account_id"])
        if found is None or (is_partner(who) and found.partner_id != who.partner_id):
            continue
        detail = view.detail(found.account_id) or {}
        out.append({**link, "name": detail.get("name", link["account_id"])})
    return out


def router(console: Console) -> APIRouter:
    router = console.router()
    reads, pages = console.reads, console.pages
    view = reads.views.accounts
    reader = reads.reader(*ACCOUNT_ROLES)

    def visible(account_id: UUID, who: Principal) -> str:
        found = view.resolve(str(account_id))
        if found is None or (is_partner(who) and found.partner_id != who.partner_id):
            raise _missing(account_id)
        return found.account_id

    @router.get("/accounts/{account_id}")
    async def account_page(account_id: UUID, request: Request,
                           who: Annotated[Principal, Depends(reader)]) -> Response:
        def work() -> dict[str, Any]:
            found = view.detail(visible(account_id, who))
            if found is None:
                raise _missing(account_id)
            contacts = []
            for c in found["contacts"][:MAX_CONTACTS]:
                summary = reads.views.summary.summary(c["customer_id"]) or {}
                contacts.append({**c, "name": summary.get("name")})
            return {"account": found, "contacts": contacts}

        data = await reads.call(work)
        await reads.record(request, who, [c["customer_id"] for c in data["contacts"]])
        return pages.render(request, "account.html", account=data["account"],
                            contacts=data["contacts"],
                            more_contacts=len(data["account"]["contacts"]) - MAX_CONTACTS)

    @router.get("/accounts/{account_id}/timeline")
    async def account_timeline(account_id: UUID, request: Request,
                               who: Annotated[Principal, Depends(reader)],
                               cursor: Annotated[str | None, Query(max_length=1000)] = None
                               ) -> Response:
        asked = str(account_id)
        try:
            after = read_account_timeline_cursor(cursor, asked) if cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc

        def work() -> dict[str, Any]:
            aid = visible(account_id, who)
            found = view.detail(aid) or {}
            page = view.page(aid, limit=PAGE, cursor=after,
                             where=TimelineFilter(include_internal=not is_partner(who)))
            items: list[Any] = [dict(i) for i in page.items]
            if is_partner(who):
                items = [partner.entry(i) for i in items]
            following = (account_timeline_cursor(Cursor.decode(page.next_cursor), asked)
                         if page.next_cursor else None)
            return {"name": found.get("name", asked), "items": items, "next": following}

        data = await reads.call(work)
        await reads.record(request, who, [i["customer_id"] for i in data["items"]
                                          if i["customer_id"] is not None])
        return pages.render(request, "account_timeline.html", account_id=asked,
                            account_name=data["name"], items=data["items"], next=data["next"])

    return router
