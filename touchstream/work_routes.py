"""The per-staff calendar feed (iCalendar, RFC 5545) and the link that opens it.

Calendar apps subscribe to a URL and cannot send an API key header, so the feed
is protected by a token in its URL instead: an HMAC-SHA256 of the staff id
under ``TOUCHSTREAM_WORK_FEED_SECRET``. ``GET /work/feed-link?staff=…`` (an
API key of a staff role) hands out the link; ``GET /calendar/{staff}.ics?token=…``
serves the feed. A wrong token answers 404, the same as feeds being off (no
secret set), so a feed's existence is not revealed. Changing the secret revokes
every link. Each customer whose task is in the feed is recorded in the read
audit under the key id ``calendar-feed:<staff>``.

The feed holds the staff member's tasks due from 30 days ago on: each a VEVENT
(UID ``<task id>@touchstream``; an appointment's end, else 15 minutes), with a
VALARM at its reminder; cancelled ones are ``STATUS:CANCELLED`` so subscribed
calendars drop them, completed ones ``COMPLETED`` in their categories.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from icalendar import Alarm, Calendar, Event
from pydantic import BaseModel
from pydantic import SecretStr as _SecretStr
from starlette.concurrency import run_in_threadpool

from projections.views import ProjectionNotReadyError
from projections.work.view import WorkView
from read_api.work import STAFF_ROLES
from touchstream.app import AppContext

FEED_DAYS_BACK = 30
DEFAULT_LENGTH = timedelta(minutes=15)
_STAFF_PATTERN = r"^[A-Za-z0-9_.:@/-]{1,100}$"


def feed_token(secret: str, staff: str) -> str:
    """The feed token of ``staff`` (URL-safe, 43 characters)."""
    digest = hmac.new(secret.encode(), f"touchstream-calendar|{staff}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def ics(staff: str, tasks: list[dict[str, Any]], now: datetime) -> bytes:
    """The calendar of ``staff``'s tasks (rows of ``WorkView.feed``)."""
    cal = Calendar()
    cal.add("prodid", "-//Touchstream//work calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"Touchstream: {staff}")
    for t in tasks:
        due = _at(t["due_at"])
        if due is None:
            continue
        event = Event()
        event.add("uid", f"{t['task_id']}@touchstream")
        event.add("dtstamp", now)
        event.add("dtstart", due)
        event.add("dtend", _at(t["ends_at"]) or due + DEFAULT_LENGTH)
        event.add("summary", t["title"] or f"{t['task_kind']} (erased)")
        event.add("categories", [t["task_kind"], t["status"].upper()])
        event.add("status", "CANCELLED" if t["status"] == "cancelled" else "CONFIRMED")
        if t["link_kind"]:
            event.add("description", f"{t['link_kind']} {t['link_id']}; "
                                     f"customer {t['customer_id']}")
        reminder = _at(t["reminder_at"])
        if reminder is not None and t["status"] == "open":
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", t["title"] or t["task_kind"])
            alarm.add("trigger", reminder - due)
            event.add_component(alarm)
        cal.add_component(event)
    return cal.to_ical()


@dataclass(frozen=True)
class FeedReader:
    """Who read a feed, for the read audit (no API key: the staff member's feed)."""

    staff: str

    @property
    def key_id(self) -> str:
        return f"calendar-feed:{self.staff}"

    @property
    def role(self) -> str:
        return "calendar-feed"


class FeedLinkPublic(BaseModel):
    staff: str
    url: str


def work_routes(ctx: AppContext) -> APIRouter:
    """The feed-link route (API key) and the feed itself (token in the URL)."""
    from touchstream.read_side import read_audit

    router = APIRouter(tags=["work"])
    secret: _SecretStr | None = ctx.settings.work.feed_secret
    view = WorkView(ctx.deps.read_store)
    audit = read_audit(ctx.deps)
    staff_reader = ctx.authorize(*STAFF_ROLES)
    base = (ctx.settings.core.public_base_url or "").rstrip("/")

    def off() -> HTTPException:
        return HTTPException(404, detail="no such calendar feed")

    @router.get("/work/feed-link", summary="The calendar feed link of a staff member "
                "(subscribe to it in a calendar app)", response_model=FeedLinkPublic,
                responses={409: {"description": "Calendar feeds are off (no "
                                                "TOUCHSTREAM_WORK_FEED_SECRET)"}})
    def feed_link(
        who: Annotated[Any, Depends(staff_reader)],
        staff: Annotated[str, Query(pattern=_STAFF_PATTERN, openapi_examples={
            "jo": {"value": "jo"}})],
    ) -> FeedLinkPublic:
        if secret is None:
            raise HTTPException(409, detail="calendar feeds are off: set "
                                            "TOUCHSTREAM_WORK_FEED_SECRET")
        token = feed_token(secret.get_secret_value(), staff)
        return FeedLinkPublic(staff=staff, url=f"{base}/calendar/{staff}.ics?token={token}")

    @router.get("/calendar/{staff}.ics", summary="A staff member's tasks as an iCalendar "
                "feed (token from /work/feed-link; no API key)",
                response_class=Response, responses={
                    200: {"content": {"text/calendar": {}}},
                    404: {"description": "No such feed (or a wrong token, or feeds off)"},
                    503: {"description": "The work read model was never built, or the read "
                                         "could not be recorded in the access log"}})
    async def feed(
        staff: str, request: Request,
        token: Annotated[str, Query(max_length=100)] = "",
    ) -> Response:
        if secret is None or not hmac.compare_digest(
                feed_token(secret.get_secret_value(), staff).encode(), token.encode()):
            raise off()
        now = datetime.now(UTC)
        try:
            tasks = await run_in_threadpool(view.feed, staff,
                                            now - timedelta(days=FEED_DAYS_BACK))
        except ProjectionNotReadyError as exc:
            raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from exc
        who = FeedReader(staff)
        for customer in dict.fromkeys(t["customer_id"] for t in tasks):
            await audit.record(request, who, customer)
        return Response(ics(staff, tasks, now), media_type="text/calendar; charset=utf-8",
                        headers={"Cache-Control": "private, max-age=60"})

    return router
