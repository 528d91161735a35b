"""The CSAT survey of a resolved case: ``/forms/survey/<link>``, a public form of the forms
channel whose link is signed per case.

The link names the customer and the case and carries an HMAC of both under the forms
secret, so it cannot be pointed at another case; the page has the forms channel's guards
(render token with a minimum fill time, honeypot, rate limit, body limit). The answer is
``RecordSatisfaction`` (score 1–5, optional comment), one per case: its source key is the
case, so a double submit records once, and a second answer is refused by the case's rules.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from channels.web.config import FieldSpec, FormsConfig, FormSpec
from channels.web.forms import SubmissionError, _payload
from channels.web.guards import RateLimiter, TokenError, check_token, issue_token
from channels.web.html import render_form, render_problem, render_thanks
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from commands.service import RecordSatisfaction
from domain.errors import DomainError

FORM = "survey"
SCORES = ("1", "2", "3", "4", "5")


class SurveySpec(FormSpec):
    """A form whose customer is named by its signed link, not by a contact field."""

    def __post_init__(self) -> None:
        pass


SPEC = SurveySpec(name=FORM, title="How did we do?", intro=(
    "Your case was resolved. How satisfied are you with how we handled it? "
    "(1 = not at all, 5 = very)"), fields=(
        FieldSpec("score", "Your rating", "select", required=True, choices=SCORES),
        FieldSpec("comment", "Anything you want to tell us", "textarea", max_length=2000)))


def _mac(secret: str, customer_id: UUID, case_id: UUID) -> str:
    return hmac.new(secret.encode(), f"csat|{customer_id}|{case_id}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def survey_link(secret: str, customer_id: UUID, case_id: UUID) -> str:
    """The path of a case's survey (send it to the customer once the case is resolved)."""
    return f"/forms/{FORM}/{customer_id}.{case_id}.{_mac(secret, customer_id, case_id)}"


def check_link(secret: str, link: str) -> tuple[UUID, UUID]:
    """The customer and case a survey link names; ``TokenError`` when it was not ours."""
    try:
        customer, case, mac = link.split(".")
        ids = UUID(customer), UUID(case)
    except ValueError as exc:
        raise TokenError("this survey link is not valid") from exc
    if not hmac.compare_digest(_mac(secret, *ids), mac):
        raise TokenError("this survey link is not valid")
    return ids


def survey_router(get_hub: Callable[[], Hub], config: FormsConfig) -> APIRouter:
    """``GET``/``POST /forms/survey/{link}``: public, no API key."""
    router = APIRouter(prefix=f"/forms/{FORM}", tags=["public forms"])
    limiter = config.limiter or RateLimiter(config.rate_limit, config.rate_window_s, config.clock)

    def page(link: str, values: dict[str, str] | None = None,
             errors: dict[str, str] | None = None, message: str | None = None,
             status: int = 200) -> HTMLResponse:
        html = render_form(SPEC, f"/forms/{FORM}/{link}",
                           issue_token(config.secret, FORM, config.clock()), config.honeypot,
                           values, errors, message)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    @router.get("/{link}", response_class=HTMLResponse, summary="A case's CSAT survey",
                responses={404: {"description": "Not a survey link of ours"}})
    def show(link: str) -> HTMLResponse:
        try:
            check_link(config.secret, link)
        except TokenError as exc:
            raise HTTPException(404, str(exc)) from exc
        return page(link)

    @router.post("/{link}", summary="Answer a case's CSAT survey", status_code=201,
                 response_class=HTMLResponse, responses={
                     200: {"description": "Already answered with this very submission"},
                     400: {"description": "Automated, or the render token is missing, forged "
                                          "or expired"},
                     404: {"description": "Not a survey link of ours, or no such customer"},
                     409: {"description": "The case is not resolved, or was answered already"},
                     422: {"description": "No rating 1-5, or the comment is too long"},
                     429: {"description": "Too many submissions from this client"}})
    async def submit(link: str, request: Request,
                     hub: Hub = Depends(get_hub)) -> Response:  # noqa: B008 - FastAPI idiom
        try:
            customer_id, case_id = check_link(config.secret, link)
        except TokenError as exc:
            raise HTTPException(404, str(exc)) from exc
        data: dict[str, Any] = {}
        try:
            host = request.client.host if request.client else "unknown"
            if (wait := limiter.hit("survey:" + host)) is not None:
                raise SubmissionError(429, "Too many submissions; please try again shortly.",
                                      headers={"Retry-After": str(int(wait) + 1)})
            data = await _payload(request, config.max_body_bytes)
            cmd = _answer(config, customer_id, case_id, dict(data))
            result = await run_in_threadpool(hub.execute, cmd)
        except SubmissionError as exc:
            values = {k: v for k, v in data.items() if isinstance(v, str) and k != "_token"}
            if exc.status in (400, 422):
                return page(link, values, exc.errors, exc.message, exc.status)
            return HTMLResponse(render_problem(SPEC.title, exc.message), status_code=exc.status,
                                headers=exc.headers)
        except CustomerNotFoundError as exc:
            raise HTTPException(404, "this survey link is not valid") from exc
        except DomainError as exc:  # not resolved yet, or answered already
            return HTMLResponse(render_problem(SPEC.title, str(exc)), status_code=409)
        return HTMLResponse(render_thanks(SPEC, str(case_id)),
                            status_code=200 if result.duplicate else 201)

    return router


def _answer(config: FormsConfig, customer_id: UUID, case_id: UUID,
            data: dict[str, Any]) -> RecordSatisfaction:
    if str(data.pop(config.honeypot, "") or "").strip():
        raise SubmissionError(400, "The submission was refused as automated.")
    raw = data.pop("_token", None)
    try:
        check_token(config.secret, raw if isinstance(raw, str) else None, FORM, config.clock(),
                    min_age_s=config.min_fill_s, max_age_s=config.max_age_s)
    except TokenError as exc:
        raise SubmissionError(400, str(exc)) from exc
    unknown = set(data) - {"score", "comment"}
    if unknown:
        raise SubmissionError(422, "Please correct the errors below.",
                              {k: "This field is not part of the survey." for k in unknown})
    score, comment = data.get("score"), data.get("comment") or None
    errors = {}
    if str(score) not in SCORES:
        errors["score"] = "Choose a rating from 1 to 5."
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000
                                or "\x00" in comment):
        errors["comment"] = "Keep the comment under 2,000 characters of text."
    if errors:
        raise SubmissionError(422, "Please correct the errors below.", errors)
    return RecordSatisfaction(customer_id=customer_id, case_id=case_id, score=int(str(score)),
                              comment=comment, actor="web-survey")
