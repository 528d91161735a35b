"""Links the hub serves to people it emails: one-click unsubscribe and double opt-in.

Both are HMAC-signed (the forms secret, under a purpose prefix of its own, so a
form token is never a valid link and the other way round), so the hub needs no
table of issued links and nobody can unsubscribe or confirm for someone else.

* ``/marketing/unsubscribe/{token}``: ``POST`` is RFC 8058's one-click
  unsubscribe (mail software posts ``List-Unsubscribe=One-Click``; any body is
  accepted), ``GET`` shows a page with one button that posts. The withdrawal
  names the campaign, so the campaign's figures count it; a second click
  records nothing.
* ``/marketing/confirm/{token}``: ``GET`` shows the confirmation button (a link
  scanner that follows links gives no consent), ``POST`` confirms the double
  opt-in. Confirmation links expire after ``max_age_s``.

A forged or damaged token answers 400, an expired confirmation 410, a
confirmation of an unknown request 409; nothing is recorded then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from channels.web.html import render_page as page
from channels.web.html import render_problem
from commands import marketing as cm
from commands.hub import Hub
from domain.errors import DomainError

PREFIX = "/marketing"
_HTML = {"text/html": {"schema": {"type": "string"}}}
#: Every answer of the link pages is a page (people follow these links, not programs).
_PAGES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": dict(_HTML)} for status, text in (
        (200, "The page (GET) or the outcome (POST)"),
        (400, "Forged, damaged or foreign link"),
        (409, "The confirmation names no pending request"),
        (410, "The confirmation link expired"))}
_PURPOSE_TEXT = {"marketing": "marketing emails", "newsletter": "the newsletter"}


class LinkError(ValueError):
    """Raised when a link's token is forged, damaged or expired."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Unsubscribe:
    customer_id: UUID
    campaign_id: UUID
    purpose: str


@dataclass(frozen=True)
class Confirmation:
    customer_id: UUID
    request_id: UUID
    issued_at: int


@dataclass(frozen=True)
class MarketingLinks:
    """Signs and checks the hub's marketing links (``base_url``: the hub's public URL)."""

    secret: str
    base_url: str
    max_age_s: int = 14 * 24 * 3600

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self.secret.encode(), f"touchstream-marketing|{payload}".encode(),
                          hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def _sign(self, payload: str) -> str:
        return f"{payload}.{self._mac(payload)}"

    def _open(self, token: str, kind: str, parts: int) -> list[str]:
        payload, _, mac = token.rpartition(".")
        if not payload or not hmac.compare_digest(self._mac(payload).encode(), mac.encode()):
            raise LinkError("this link is not valid; it may have been cut short")
        fields = payload.split(".")
        if len(fields) != parts or fields[0] != kind:
            raise LinkError("this link is not valid here")
        return fields[1:]

    def require(self) -> None:
        """Raise ``LinkError`` (409) when the hub cannot link to itself."""
        if not self.base_url:
            raise LinkError("TOUCHSTREAM_PUBLIC_BASE_URL is not set: the hub cannot link to "
                            "itself in an email", status=409)

    def _url(self, path: str) -> str:
        self.require()
        return f"{self.base_url.rstrip('/')}{PREFIX}/{path}"

    def unsubscribe_url(self, customer_id: UUID, campaign_id: UUID, purpose: str) -> str:
        return self._url(f"unsubscribe/{self._sign(f'u1.{customer_id}.{campaign_id}.{purpose}')}")

    def confirm_url(self, customer_id: UUID, request_id: UUID, now: float) -> str:
        return self._url(f"confirm/{self._sign(f'c1.{customer_id}.{request_id}.{int(now)}')}")

    def unsubscribe(self, token: str) -> Unsubscribe:
        customer, campaign, purpose = self._open(token, "u1", 4)
        if purpose not in _PURPOSE_TEXT:
            raise LinkError("this link is not valid here")
        return Unsubscribe(UUID(customer), UUID(campaign), purpose)

    def confirmation(self, token: str, now: float) -> Confirmation:
        customer, request, issued = self._open(token, "c1", 4)
        found = Confirmation(UUID(customer), UUID(request), int(issued))
        if now - found.issued_at > self.max_age_s:
            raise LinkError("this confirmation link has expired; please subscribe again", 410)
        return found


def _button_page(title: str, text: str) -> str:
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
                       f'<form method="post"><button type="submit">{escape(title)}</button></form>')


def _done(title: str, text: str) -> HTMLResponse:
    return HTMLResponse(page(title, f'<h1>{escape(title)}</h1><p role="status">{escape(text)}</p>'))


def _problem(exc: LinkError | DomainError) -> HTMLResponse:
    status = exc.status if isinstance(exc, LinkError) else 409
    return HTMLResponse(render_problem("This link cannot be used", str(exc)), status_code=status)


def marketing_links_router(hub: Callable[[], Hub], links: MarketingLinks,
                           clock: Callable[[], float]) -> APIRouter:
    """The public unsubscribe and double opt-in pages (no API key: the link is signed)."""
    router = APIRouter(prefix=PREFIX, tags=["marketing links"], include_in_schema=True)

    @router.get("/unsubscribe/{token}", response_class=HTMLResponse, responses=_PAGES,
                summary="Unsubscribe page (a button that posts)")
    def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            found = links.unsubscribe(token)
        except (LinkError, ValueError) as exc:
            return _problem(exc if isinstance(exc, LinkError) else LinkError(str(exc)))
        return HTMLResponse(_button_page(
            "Unsubscribe", f"Stop receiving {_PURPOSE_TEXT[found.purpose]} from us?"))

    @router.post("/unsubscribe/{token}", response_class=HTMLResponse, responses=_PAGES,
                 summary="RFC 8058 one-click unsubscribe")
    async def unsubscribe(token: str) -> HTMLResponse:
        try:
            found = links.unsubscribe(token)
            await run_in_threadpool(hub().execute, cm.WithdrawConsent(
                customer_id=found.customer_id, consent_channel="email",
                purpose=found.purpose, reason="unsubscribe",  # type: ignore[arg-type]
                campaign_id=found.campaign_id, actor="unsubscribe-link"))
        except LinkError as exc:
            return _problem(exc)
        except ValueError as exc:  # a signed token that does not parse
            return _problem(LinkError(str(exc)))
        except DomainError as exc:
            return _problem(exc)
        return _done("You are unsubscribed",
                     f"You will not receive {_PURPOSE_TEXT[found.purpose]} from us any more.")

    @router.get("/confirm/{token}", response_class=HTMLResponse, responses=_PAGES,
                summary="Double opt-in page (a button that posts)")
    def confirm_page(token: str) -> HTMLResponse:
        try:
            links.confirmation(token, clock())
        except LinkError as exc:
            return _problem(exc)
        except ValueError as exc:
            return _problem(LinkError(str(exc)))
        return HTMLResponse(_button_page("Confirm", "Confirm your subscription?"))

    @router.post("/confirm/{token}", response_class=HTMLResponse, responses=_PAGES,
                 summary="Confirm a double opt-in")
    async def confirm(token: str) -> HTMLResponse:
        try:
            found = links.confirmation(token, clock())
            await run_in_threadpool(hub().execute, cm.ConfirmConsent(
                customer_id=found.customer_id, request_id=found.request_id,
                actor="double-opt-in"))
        except LinkError as exc:
            return _problem(exc)
        except ValueError as exc:
            return _problem(LinkError(str(exc)))
        except DomainError as exc:
            return _problem(exc)
        return _done("Thank you", "Your subscription is confirmed.")

    return router
