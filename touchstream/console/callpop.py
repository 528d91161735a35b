"""The live screen-pop: a page an agent keeps open; calls appear on it as they ring.

``GET /console/screen-pop`` is the page; ``GET /console/screen-pop/stream`` is its
Server-Sent Events stream. Each call step the phone webhooks verify (Twilio status
callbacks, CTI events; ``touchstream.console.feed``) is sent to every open stream as
an HTML card (``event: call``): the caller's customer card and last touchpoints — the
same lookup as ``GET /screen-pop`` (``read_api.screen_pop``), scoped to the signed-in
key's partner — or "unknown caller" with a one-click "create prospect". Each customer
shown is recorded in the read audit before the card is sent. Later steps of the same
call replace its card (its state: ringing, answered, ended…).

The stream sends a comment every ``KEEPALIVE_S`` seconds so proxies keep it open, and
ends when the session does (checked at each keep-alive) and after ``STREAM_MAX_S`` (the
browser reconnects by itself after ``retry``), so a server shutting down waits for no
stream longer than that.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.responses import StreamingResponse

from domain.errors import DomainError
from projections.timeline.view import TimelineFilter
from read_api import partner
from read_api.dependencies import DIRECTORY_ROLES, Principal, is_partner
from read_api.screen_pop import _clean_number
from touchstream.console.context import Console
from touchstream.console.customers import can
from touchstream.console.feed import RingingCall
from touchstream.console.web import CONSOLE_HEADERS, SignInRequiredError

KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0
RECENT = 3


def sse(event: str, html: str) -> bytes:
    """One Server-Sent Event whose data is an HTML fragment (one ``data:`` line per line)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n".encode()


def router(console: Console) -> APIRouter:
    router = console.router()
    reads, pages = console.reads, console.pages
    views = reads.views
    reader = reads.reader(*DIRECTORY_ROLES)

    def pop(number: str, who: Principal) -> list[dict[str, Any]]:
        partnered = is_partner(who)
        matches = views.directory.lookup(("phone", "fax"), number, partner_id=who.partner_id,
                                         partner_only=partnered)
        where = TimelineFilter(include_internal=not partnered)
        out: list[dict[str, Any]] = []
        for entry in matches:
            summary: Any = views.summary.summary(entry["customer_id"])
            if summary is None:
                continue
            items: list[Any] = views.timeline.page(entry["customer_id"], limit=RECENT,
                                                   where=where).items
            if partnered:
                summary = partner.summary(summary)
                items = [partner.entry(dict(i)) for i in items]
            out.append({"customer": summary, "recent": items})
        return out

    async def card(request: Request, who: Principal, call: RingingCall) -> str:
        number = None
        if call.number:
            try:
                number = console.normalise_phone(_clean_number(call.number))
            except (ValueError, DomainError):
                number = None
        matches = await reads.call(pop, number, who) if number else []
        await reads.record(request, who, [m["customer"]["customer_id"] for m in matches])
        slot = "call-" + hashlib.sha256(call.call_id.encode()).hexdigest()[:16]
        return pages.env.get_template("_call_card.html").render(
            prefix=router.prefix, call=call, slot=slot, number=number or call.number,
            matches=matches, csrf=console.auth.caller(request).session.csrf,
            can_create=can(who, "register-customer"))

    @router.get("/screen-pop")
    def screen_pop_page(request: Request,
                        who: Annotated[Principal, Depends(reader)]) -> Response:
        return pages.render(request, "screen_pop.html")

    @router.get("/screen-pop/stream")
    async def stream(request: Request, who: Annotated[Principal, Depends(reader)]) -> Response:
        subscription = console.feed.subscribe()

        async def events() -> AsyncIterator[bytes]:
            ends = time.monotonic() + STREAM_MAX_S
            try:
                yield b"retry: 2000\n: listening\n\n"
                while time.monotonic() < ends:
                    call = await subscription.next(min(KEEPALIVE_S, ends - time.monotonic()))
                    if call is None:
                        if await request.is_disconnected():
                            return
                        try:  # the session may have ended meanwhile
                            request.state.console_caller = None
                            console.auth.caller(request)
                        except SignInRequiredError:
                            yield b"event: signed-out\ndata: \n\n"
                            return
                        yield b": keep-alive\n\n"
                        continue
                    if call.direction != "inbound":
                        continue
                    try:
                        html = await card(request, who, call)
                    except HTTPException as exc:  # e.g. the read audit is down: show nothing
                        html = pages.env.get_template("_error.html").render(
                            status=exc.status_code, reason=str(exc.detail))
                    yield sse("call", html)
            finally:
                subscription.close()

        return StreamingResponse(events(), media_type="text/event-stream", headers={
            **CONSOLE_HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return router
