"""Signing in and out of the console with an API key.

Why API keys and no separate user accounts: a key already is the hub's identity
(role, partner scope, a name, revocation, the ``key_id`` in the read audit), made and
revoked with ``touchstream keys``; user accounts would add a second identity store,
password hashing and reset flows that every role and audit rule would have to be
taught again. An agent is given their own key (``touchstream keys create --role
agent --name mia``) and signs in with it; the browser then holds only a session
cookie, never the key.

Sign-in is protected from login CSRF by a double-submitted token (a pre-session
cookie that the form echoes); a successful sign-in ends any session the browser
already had and starts a new one with a fresh id (no fixation).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.responses import RedirectResponse

from touchstream.console.context import Console
from touchstream.console.sessions import COOKIE
from touchstream.console.web import PREFIX, form_of

PRE_COOKIE = "ts_console_signin"


def _secure(console: Console, request: Request) -> bool:
    if console.secure_cookie is not None:
        return console.secure_cookie
    return request.url.scheme == "https"


def router(console: Console) -> APIRouter:
    router = console.router()
    pages, sessions = console.pages, console.sessions

    def sign_in_form(request: Request, status: int = 200, problem: str | None = None
                     ) -> Response:
        token = secrets.token_urlsafe(24)
        response = pages.render(request, "sign_in.html", status, signin_token=token,
                                problem=problem)
        response.set_cookie(PRE_COOKIE, token, max_age=600, path=f"{PREFIX}/sign-in",
                            httponly=True, samesite="strict", secure=_secure(console, request))
        return response

    @router.get("/sign-in")
    def sign_in_page(request: Request) -> Response:
        return sign_in_form(request)

    @router.post("/sign-in")
    async def sign_in(request: Request,
                      form: Annotated[dict[str, str], Depends(form_of)]) -> Response:
        expected = request.cookies.get(PRE_COOKIE, "")
        sent = form.get("signin_token", "")
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            return sign_in_form(request, 403, "The sign-in form expired; please try again.")
        key = console.auth.keys.authenticate(form.get("api_key", "").strip())
        if key is None or not key.active:
            return sign_in_form(request, 401, "That key is unknown or has been revoked.")
        if key.role == "adapter":
            return sign_in_form(request, 403, "Adapter keys cannot sign in to the console.")
        sessions.end(request.cookies.get(COOKIE))  # no session survives a sign-in
        session_id = sessions.start(key.id)
        response = RedirectResponse(f"{PREFIX}", status_code=303)
        response.set_cookie(COOKIE, session_id, max_age=int(sessions.absolute_s),
                            path="/", httponly=True, samesite="lax",
                            secure=_secure(console, request))
        response.delete_cookie(PRE_COOKIE, path=f"{PREFIX}/sign-in")
        return response

    @router.post("/sign-out", dependencies=[Depends(console.csrf)])
    def sign_out(request: Request) -> Response:
        sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        if request.headers.get("hx-request") == "true":
            response = Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    return router
