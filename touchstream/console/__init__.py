"""The staff console: server-rendered pages (Jinja2 + htmx) where agents find a customer,
read the whole timeline, act, and see callers pop up as the phone rings.

``console_routes(ctx)`` is a ``RouterFactory`` for ``touchstream.app.create_app``.
Everything is under ``/console`` (and ``/`` redirects there):

==============================================  ==============================================
``/console/sign-in``, ``/console/sign-out``     ``touchstream.console.signin``
``/console``, ``/console/search``               search (``customers``)
``/console/customers/{id}`` (+ ``/timeline``)   customer page, timeline pages (``customers``)
``/console/events/{id}`` (+ ``/files/{sha}``)   an event's body, its attachments (``customers``)
``/console/customers/{id}/…`` (POST)            notes, calls, visits, callbacks, stage,
                                                merge/unmerge (``actions``)
``/console/screen-pop`` (+ ``/stream``)         the live screen-pop (``callpop``)
``/console/admin/status``                       read models' lag (``admin``)
``/console/static/…``                           htmx, the console's script and stylesheet
==============================================  ==============================================

Reads go through the read API's dependencies (roles, partner scope, read audit), writes
through the API's commands; see each module. Nothing is built at import time.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from starlette.responses import RedirectResponse

from commands.identity import normalise_number
from read_api.dependencies import ReadDeps
from touchstream.console import accounts, actions, admin, callpop, customers, signin
from touchstream.console.context import Console
from touchstream.console.sessions import IDLE_S
from touchstream.console.web import HERE, PREFIX, ConsoleAuth, Pages

STATIC = {"htmx.min.js": "text/javascript", "console.js": "text/javascript",
          "console.css": "text/css"}


def build_console(ctx: Any, *, audited: bool = True, idle_s: float = IDLE_S) -> Console:
    """The console over an ``AppContext`` (``touchstream.app``)."""
    from touchstream.read_side import read_audit

    deps = ctx.deps
    region = deps.settings.default_region
    sessions = deps.console_sessions(idle_s)
    auth = ConsoleAuth(sessions, ctx.keys)
    reads = ReadDeps(deps.read_views, auth, audit=read_audit(deps) if audited else None,
                     log_head=lambda: int(deps.hub.recorder.max_notification_id() or 0))
    return Console(pages=Pages(), sessions=sessions, auth=auth, reads=reads, hub=ctx.hub,
                   blobs=deps.blobs, feed=deps.call_feed,
                   normalise_phone=lambda raw: normalise_number(raw, region),
                   sla=deps.settings.service.sla)


def console_router(console: Console) -> APIRouter:
    """Every console route over ``console``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> Response:
        return RedirectResponse(PREFIX, status_code=303)

    static = {name: ((HERE / "static" / name).read_bytes(), media)
              for name, media in STATIC.items()}

    @router.get(f"{PREFIX}/static/{{name}}")
    def static_file(name: str) -> Response:
        found = static.get(name)
        if found is None:
            raise HTTPException(404, detail=f"no static file {name}")
        return Response(found[0], media_type=found[1], headers={
            "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    router.include_router(signin.router(console))
    router.include_router(customers.router(console))
    router.include_router(actions.previews(console))
    router.include_router(actions.router(console))
    router.include_router(callpop.router(console))
    router.include_router(admin.router(console))
    router.include_router(accounts.router(console))
    return router


def console_routes(ctx: Any) -> APIRouter:
    """A ``RouterFactory``: the console over the app's dependencies."""
    return console_router(build_console(ctx))
