"""What every console route shares: templates, security headers, the signed-in caller,
CSRF, and errors rendered as HTML.

* Templates are Jinja2 with autoescaping on for every template (``select_autoescape``
  with ``default=True``: a template name that is not ``.html`` is escaped too).
* Every console answer carries ``CONSOLE_HEADERS``: a Content-Security-Policy that
  allows scripts, styles and connections only from the hub itself (no inline script,
  no ``eval``: htmx is configured with ``allowEval: false``), no framing, no plugins;
  ``nosniff``; no referrer across origins; ``no-store`` (pages hold personal data).
* ``ConsoleAuth(*roles)`` is the console's ``authorize``: the same role names and
  the same ``Principal`` as the API's, from the session cookie instead of a header, so
  the read API's dependencies (``read_api.dependencies.ReadDeps``) and the read audit
  work unchanged. No session: a full page redirects to sign-in, an htmx request gets
  ``HX-Redirect``; a role not admitted: 403.
* ``csrf_checked`` guards every state-changing route: the session's token must come
  back as ``X-CSRF-Token`` (htmx sends it from ``hx-headers``) or a ``csrf`` form field,
  and a cross-origin ``Origin`` is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse

from channels.bodies import form_pairs, read_capped
from touchstream.adapters.keys import ROLES, KeyStore
from touchstream.auth import Principal
from touchstream.console.sessions import COOKIE, Session, SessionStore

HERE = Path(__file__).parent
PREFIX = "/console"
FORM_LIMIT = 64 * 1024

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
CONSOLE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def new_token() -> str:
    """A form's idempotency token (32 hex digits; console.js makes the next one)."""
    return uuid.uuid4().hex


def templates() -> Environment:
    """The console's template environment (autoescaping everywhere)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


def when(value: Any) -> str:
    """An ISO time as ``2026-11-24 09:30`` (UTC), for people."""
    if not value:
        return ""
    try:
        stamp = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M")


class SignInRequiredError(Exception):
    """Raised when a console route is called without a live session."""


@dataclass(frozen=True)
class Caller:
    """The signed-in person: the API's ``Principal`` plus the session."""

    principal: Principal
    session: Session
    session_id: str


class ConsoleAuth:
    """The console's ``authorize(*roles)``: a dependency giving the session's ``Principal``."""

    def __init__(self, sessions: SessionStore, keys: KeyStore) -> None:
        self.sessions = sessions
        self.keys = keys

    def caller(self, request: Request) -> Caller:
        """The caller of ``request`` (cached on it), or ``SignInRequiredError``."""
        found: Caller | None = getattr(request.state, "console_caller", None)
        if found is not None:
            return found
        session_id = request.cookies.get(COOKIE)
        session = self.sessions.get(session_id)
        if session is None or session_id is None:
            raise SignInRequiredError()
        key = next((k for k in self.keys.list_keys() if k.id == session.key_id), None)
        if key is None or not key.active:  # revoked since sign-in: the session ends now
            self.sessions.end(session_id)
            raise SignInRequiredError()
        who = Principal(key_id=key.id, role=key.role, partner_id=key.partner_id, name=key.name)
        found = Caller(who, session, session_id)
        request.state.console_caller = found
        return found

    def __call__(self, *roles: str) -> Callable[[Request], Principal]:
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"ConsoleAuth() needs roles from {ROLES}, got {roles}")
        admitted = {*roles, "admin"}

        def dependency(request: Request) -> Principal:
            who = self.caller(request).principal
            if who.role not in admitted:
                raise HTTPException(403, detail=f"your key's role ({who.role}) may not use "
                                                "this page")
            return who

        dependency.__name__ = "console_" + "_".join(sorted(admitted))
        return dependency


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form of ``request`` (read once, size-capped; last value wins)."""
    cached: dict[str, str] | None = getattr(request.state, "console_form", None)
    if cached is None:
        body = await read_capped(request, FORM_LIMIT)
        cached = dict(form_pairs(body)) if body else {}
        request.state.console_form = cached
    return cached


def csrf_checker(auth: ConsoleAuth) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A route dependency refusing a state change without the session's CSRF token."""
    async def csrf_checked(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin and origin != _own_origin(request):
            raise HTTPException(403, detail="cross-origin form refused")
        caller = auth.caller(request)
        sent = request.headers.get("x-csrf-token")
        if sent is None:
            sent = (await form_of(request)).get("csrf")
        if not caller.session.csrf_ok(sent):
            raise HTTPException(403, detail="the form's security token is missing or stale; "
                                            "reload the page and try again")

    return csrf_checked


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


class Pages:
    """Renders the console's templates (one environment, built by the router factory)."""

    def __init__(self) -> None:
        self.env = templates()

    def render(self, request: Request, name: str, status_code: int = 200,
               headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
        caller: Caller | None = getattr(request.state, "console_caller", None)
        html = self.env.get_template(name).render(
            prefix=PREFIX, caller=caller, who=caller.principal if caller else None,
            csrf=caller.session.csrf if caller else "", **context)
        return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))

    def error(self, request: Request, status: int, reason: str,
              headers: Mapping[str, str] | None = None) -> HTMLResponse:
        name = "_error.html" if is_htmx(request) else "error.html"
        out = dict(headers or {})
        if is_htmx(request) and request.headers.get("hx-target") == "timeline-rows":
            # an action's error goes to the status line, not among the touchpoints
            out.update({"HX-Retarget": "#action-status", "HX-Reswap": "innerHTML"})
        return self.render(request, name, status, out, status=status, reason=reason)


def console_route(pages: Pages) -> type[APIRoute]:
    """The route class of every console router: errors become a page (a fragment for
    htmx), a missing session a redirect to sign-in, every answer gets ``CONSOLE_HEADERS``."""

    class ConsoleRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def console_handler(request: Request) -> Response:
                try:
                    response = await handler(request)
                except SignInRequiredError:
                    response = sign_in_redirect(request)
                except HTTPException as exc:
                    response = pages.error(request, exc.status_code, str(exc.detail),
                                           exc.headers)
                except RequestValidationError as exc:
                    reason = "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                        for e in exc.errors())
                    response = pages.error(request, 422, reason or "invalid input")
                for name, value in CONSOLE_HEADERS.items():
                    response.headers.setdefault(name, value)
                return response

            return console_handler

    return ConsoleRoute


def sign_in_redirect(request: Request) -> Response:
    target = f"{PREFIX}/sign-in"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
