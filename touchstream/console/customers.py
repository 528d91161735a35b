"""Finding a customer and reading them: search, the customer page, timeline pages, one
event's body and its attachments.

Every read goes through the read API's dependencies (``read_api.dependencies``): the
same views, roles, partner scope (``scoped``: another partner's customer answers 404
like a missing one; ``read_api.partner`` hides what partners may not see) and read
audit — a page with a ``customer_id`` in its path records the read before anything is
read (``reads.audited``), an event or attachment records the customer it belongs to
before it is shown (``reads.record``). A search page is not recorded, as in the API.

The customer page is the summary, the actions the caller's role may take, and the
first timeline page; older pages load as the list scrolls (``hx-trigger="revealed"``)
over the same keyset cursors as ``GET /customers/{id}/timeline``. Panels are listed
in ``PANELS`` (one template include each; see README).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from channels.web.command_routes import ROUTE_ROLES
from domain.customer import CHANNELS, DIRECTIONS
from projections.events import us
from projections.timeline.view import Cursor, TimelineFilter
from read_api import partner
from read_api.cursors import CursorError, read_timeline_cursor, timeline_cursor
from read_api.dependencies import (
    DIRECTORY_ROLES,
    SUMMARY_ROLES,
    TIMELINE_ROLES,
    Principal,
    is_partner,
    not_found,
    scoped,
)
from read_api.events import visible_detail
from read_api.schemas import TimelineQuery
from touchstream.console.accounts import accounts_of
from touchstream.console.context import Console
from touchstream.console.web import new_token

PAGE = 25
SEARCH_LIMIT = 10
#: The customer page's panels, in order: each is one template under ``templates/panels/``
#: given ``summary``, ``business`` (``read_api.business``: an area's part is None for a
#: role that may not read it), ``accounts`` (``console.accounts.accounts_of``), ``who``
#: and ``can``; a business area adds its own here.
PANELS = ("panels/profile.html", "panels/channels.html", "panels/callbacks.html",
          "panels/sales.html", "panels/consent.html", "panels/service.html",
          "panels/dispatch.html", "panels/contracts.html", "panels/accounts.html")
FILTER_FIELDS = ("channel", "direction", "kind", "since", "until", "q")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def can(who: Principal, action: str) -> bool:
    """Whether ``who`` may run the command behind ``action`` (the API's role table)."""
    return who.role == "admin" or who.role in ROUTE_ROLES[action]


def timeline_filter(request: Request, who: Principal) -> tuple[TimelineFilter, dict[str, Any]]:
    """The filter form's fields as the API's ``TimelineQuery`` (empty fields ignored;
    a date means that day in UTC), and the same fields to carry into the next page."""
    raw: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        values = [v for v in request.query_params.getlist(name) if v.strip()]
        if values:
            raw[name] = values if name in ("channel", "direction", "kind") else values[0]
    carried = dict(raw)
    for name in ("since", "until"):
        if name in raw and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw[name]):
            raw[name] = datetime.combine(date.fromisoformat(raw[name]), time(), UTC)
    try:
        params = TimelineQuery.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise HTTPException(400, detail=f"filter not understood: {problems}") from exc
    return TimelineFilter(
        channels=tuple(params.channel), directions=tuple(params.direction),
        kinds=tuple(params.kind), since_us=us(params.since) if params.since else None,
        until_us=us(params.until) if params.until else None, text=params.q,
        include_internal=not is_partner(who)), carried


def router(console: Console) -> APIRouter:
    router = console.router()
    reads, pages = console.reads, console.pages
    views = reads.views
    search_reader = reads.reader(*DIRECTORY_ROLES)
    page_reader = reads.reader(*SUMMARY_ROLES)
    timeline_reader = reads.reader(*TIMELINE_ROLES)

    async def search_results(q: str, who: Principal) -> list[Any]:
        if not q.strip():
            return []
        found = await reads.call(lambda: views.directory.search_page(
            q, limit=SEARCH_LIMIT, partner_id=who.partner_id, partner_only=is_partner(who)))
        return list(found.items)

    @router.get("")
    async def home(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
        """Search, for the roles that may; a page of links for the others (analysts)."""
        who = console.auth.caller(request).principal
        if who.role not in (*DIRECTORY_ROLES, "admin"):
            return pages.render(request, "home.html")
        return pages.render(request, "search.html", q=q, results=await search_results(q, who))

    @router.get("/search")
    async def search(request: Request, who: Annotated[Principal, Depends(search_reader)],
                     q: Annotated[str, Query(max_length=200)] = "") -> Response:
        return pages.render(request, "_results.html", q=q,
                            results=await search_results(q, who))

    def timeline_page(found_root: str, asked: str, who: Principal, where: TimelineFilter,
                      after: Cursor | None) -> dict[str, Any]:
        page = views.timeline.page(found_root, limit=PAGE, cursor=after, where=where)
        items: list[Any] = page.items
        if is_partner(who):
            items = [partner.entry(dict(i)) for i in items]
        following = (timeline_cursor(Cursor.decode(page.next_cursor), asked)
                     if page.next_cursor else None)
        return {"items": items, "next_cursor": following}

    def more_url(customer_id: str, cursor: str | None, carried: dict[str, Any]) -> str | None:
        if cursor is None:
            return None
        query = urlencode({**carried, "cursor": cursor}, doseq=True)
        return f"{console_prefix}/customers/{customer_id}/timeline?{query}"

    console_prefix = router.prefix

    @router.get("/customers/{customer_id}", dependencies=reads.audited(page_reader))
    async def customer_page(customer_id: UUID, request: Request,
                            who: Annotated[Principal, Depends(page_reader)]) -> Response:
        asked = str(customer_id)
        where, carried = timeline_filter(request, who)
        # marketing reads summaries, not timelines (the API's role table)
        with_timeline = who.role in TIMELINE_ROLES or who.role == "admin"

        def work() -> dict[str, Any]:
            found = scoped(views.summary.resolve(asked), who, customer_id)
            summary: Any = views.summary.summary(found.root)
            if summary is None:
                raise not_found(customer_id)
            if is_partner(who):
                summary = partner.summary(summary)
            rows = (timeline_page(found.root, asked, who, where, None) if with_timeline
                    else {"items": [], "next_cursor": None})
            business = console.business.block(who, found.root, datetime.now(UTC))
            return {"summary": summary, "business": business, "root": found.root,
                    "accounts": accounts_of(console, who, found.root), **rows}

        data = await reads.call(work)
        if data["root"] != asked:  # asked by a merged-away id: the root is read too
            await reads.record(request, who, [data["root"]])
        return pages.render(
            request, "customer.html", summary=data["summary"], business=data["business"],
            accounts=data["accounts"], items=data["items"],
            root=data["root"], asked=asked, panels=PANELS, filters=carried,
            channels=CHANNELS, directions=DIRECTIONS,
            more=more_url(asked, data["next_cursor"], carried),
            with_timeline=with_timeline, token=new_token(),
            can=lambda action: can(who, action))

    @router.get("/customers/{customer_id}/timeline",
                dependencies=reads.audited(timeline_reader))
    async def timeline_rows(customer_id: UUID, request: Request,
                            who: Annotated[Principal, Depends(timeline_reader)],
                            cursor: Annotated[str | None, Query(max_length=1000)] = None
                            ) -> Response:
        asked = str(customer_id)
        where, carried = timeline_filter(request, who)
        try:
            after = read_timeline_cursor(cursor, asked) if cursor else None
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc

        def work() -> dict[str, Any]:
            found = scoped(views.timeline.resolve(asked), who, customer_id)
            return {"root": found.root,
                    **timeline_page(found.root, asked, who, where, after)}

        data = await reads.call(work)
        if data["root"] != asked:
            await reads.record(request, who, [data["root"]])
        return pages.render(request, "_rows.html", items=data["items"], root=data["root"],
                            more=more_url(asked, data["next_cursor"], carried),
                            filtered=bool(carried), first=cursor is None)

    @router.get("/events/{event_id}")
    async def event_detail(event_id: UUID, request: Request,
                           who: Annotated[Principal, Depends(timeline_reader)]) -> Response:
        detail, customer = await reads.call(visible_detail, views, str(event_id), who)
        data, entry = detail.data, dict(detail.entry)
        if is_partner(who):
            data, entry = partner.event_data(data), partner.entry(entry)
        await reads.record(request, who, [customer])
        body = data.get("body_text")
        ref = data.get("body_ref")
        if ref and console.blobs is not None and not is_partner(who):
            body = await _blob_text(console, ref) or body
        return pages.render(request, "_event.html", entry=entry, data=data, body=body,
                            recording=_recording(data))

    @router.get("/events/{event_id}/files/{sha256}")
    async def event_file(event_id: UUID, sha256: str, request: Request,
                         who: Annotated[Principal, Depends(timeline_reader)]) -> Response:
        """An attachment or fax document, always as a download (never shown inline)."""
        if not _SHA.match(sha256):
            raise HTTPException(404, detail="no such file")
        detail, customer = await reads.call(visible_detail, views, str(event_id), who)
        files = _files(partner.event_data(detail.data) if is_partner(who) else detail.data)
        if sha256 not in files or console.blobs is None:
            raise HTTPException(404, detail=f"event {event_id} has no file {sha256[:12]}…")
        await reads.record(request, who, [customer])
        try:
            raw = await run_in_threadpool(console.blobs.get, sha256)
        except (KeyError, OSError, ValueError) as exc:
            raise HTTPException(404, detail="the file is no longer in the blob store") from exc
        name = _SAFE_NAME.sub("_", files[sha256] or "attachment")[:120] or "attachment"
        return Response(raw, media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Type-Options": "nosniff"})

    return router


async def _blob_text(console: Console, ref: str) -> str | None:
    assert console.blobs is not None
    try:
        raw = await run_in_threadpool(console.blobs.get, ref)
    except (KeyError, OSError, ValueError):
        return None
    return raw.decode("utf-8", errors="replace")


def _files(data: dict[str, Any]) -> dict[str, str | None]:
    """The downloadable files of an event: sha256 → file name."""
    files: dict[str, str | None] = {}
    for item in data.get("attachments") or []:
        if isinstance(item, dict) and isinstance(item.get("sha256"), str):
            files[item["sha256"]] = item.get("filename")
    doc = data.get("document_sha256")
    if isinstance(doc, str):
        files[doc] = f"fax-{data.get('fax_id', 'document')}.pdf"
    recording = data.get("recording_ref")
    if isinstance(recording, str) and _SHA.match(recording):
        files[recording] = f"recording-{data.get('call_id', 'call')}"
    return files


def _recording(data: dict[str, Any]) -> str | None:
    """A recording link, only when it is a plain https URL (never ``javascript:``)."""
    details = data.get("details") or {}
    for url in (details.get("recording_url") if isinstance(details, dict) else None,
                data.get("recording_ref")):
        if isinstance(url, str) and url.startswith("https://"):
            return url  # autoescaped in the href; any other scheme is shown as nothing
    return None
