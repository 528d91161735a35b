"""A case's status page by a signed, expiring link: ``/help/cases/<token>`` (no accounts).

The link (``commands.case_links``) names the case and its customer: forged or altered →
403, expired → 410, both on the forms' house error page. The page shows the case's status
and its public thread (the customer's own contacts, shared notes and status changes;
never internal notes). Its reply form (render token with a minimum fill time, honeypot,
body limit, per-client rate limit) records the reply as an inbound web touchpoint linked
to the case, keyed by the form's nonce (a double submit records once), resumes a case that
was waiting on the customer, and redirects back to the status page.

Every answer of the self-service pages carries ``SELF_SERVICE_HEADERS``: a
Content-Security-Policy with no scripts at all (the pages need none), no framing,
same-origin referrers (the link's token never leaves the site), ``nosniff``, ``no-store``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from channels.web.config import FormsConfig
from channels.web.forms import FormsEndpoint, SubmissionError, _payload
from channels.web.guards import TokenError, check_token, issue_token
from channels.web.html import render_page, render_problem
from commands import messages as m
from commands import service as sc
from commands.case_links import CaseLinkError, CaseLinkExpiredError, check_status_token
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from domain import service as ds
from domain.customer import Customer
from domain.errors import DomainError

REPLY_FORM = "case-reply"
MAX_REPLY = 5000
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SELF_SERVICE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_STATUS = {"open": "Open: we are working on it", "waiting": "Waiting for your answer",
           "resolved": "Resolved", "closed": "Closed"}


def html_page(body: str, status: int = 200,
              headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A self-service answer: ``body`` (a whole page) with ``SELF_SERVICE_HEADERS``."""
    return HTMLResponse(body, status_code=status, headers={**SELF_SERVICE_HEADERS,
                                                           **(headers or {})})


def html_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses, each an HTML page (as they are answered)."""
    return {status: {"description": text, "content": {"text/html": {"schema": {
        "type": "string"}}}} for status, text in described.items()}


def problem(title: str, message: str, status: int,
            headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """The house error page (the forms') with ``SELF_SERVICE_HEADERS``."""
    return html_page(render_problem(title, message), status, headers)


def case_status_router(get_hub: Callable[[], Hub], config: FormsConfig) -> APIRouter:
    """``GET``/``POST /cases/{token}``: public, no API key (``selfservice_router`` mounts it
    under ``/help``)."""
    router = APIRouter(prefix="/cases", tags=["self-service"])
    endpoint = FormsEndpoint(config)
    limiter = endpoint.limiter

    def now() -> datetime:
        return datetime.fromtimestamp(config.clock(), UTC)

    def client(request: Request) -> str:
        return endpoint.client_key(request)

    @router.get("/{token}", response_class=HTMLResponse,
                summary="A case's status and public thread, by its signed link",
                responses=html_responses({403: "Not a link of ours (or altered)",
                                          404: "The case is no longer there",
                                          410: "The link has expired"}))
    def status(token: str, hub: Hub = Depends(get_hub)) -> HTMLResponse:  # noqa: B008
        try:
            link = check_status_token(config.secret, token, now())
            return _status_page(hub, token, link.customer_id, link.case_id)
        except CaseLinkExpiredError as exc:
            return problem("Your case", str(exc), 410)
        except CaseLinkError as exc:
            return problem("Your case", str(exc), 403)
        except (CustomerNotFoundError, DomainError):
            return problem("Your case", "This case is no longer available.", 404)

    def _status_page(hub: Hub, token: str, customer_id: UUID, case_id: UUID,
                     values: dict[str, str] | None = None,
                     errors: dict[str, str] | None = None, status: int = 200,
                     headers: Mapping[str, str] | None = None) -> HTMLResponse:
        customer = hub.customer(customer_id)
        case = ds.case_state(customer, str(case_id))
        entries, subject = _thread(hub.stream(customer_id), str(case_id), set(case["touchpoints"]))
        rows = "".join(
            f'<li class="entry"><p><strong>{escape(who)}</strong>, '
            f'<time datetime="{escape(at)}">{escape(at[:16].replace("T", " "))} UTC</time>'
            f"</p><p>{escape(text)}</p></li>" for at, who, text in entries)
        body = [f"<h1>Your case</h1><p>{escape(subject)}</p>",
                (f'<p id="case-status">Status: <strong>{escape(_STATUS.get(case["status"], case["status"]))}'
                "</strong></p>"),
                f'<h2>Messages</h2><ol id="thread">{rows}</ol>']
        if case["status"] in ("open", "waiting", "resolved"):
            body.append(_reply_form(config, token, now(), values or {}, errors or {}))
        return html_page(render_page("Your case", "".join(body)), status, headers)

    @router.post("/{token}", response_class=HTMLResponse,
                 summary="Reply on a case through its signed link",
                 responses=html_responses({
                     303: "Recorded; back to the status page",
                     400: "Automated, or the render token is missing, forged or expired",
                     403: "Not a link of ours (or altered)", 409: "The case is closed",
                     410: "The link has expired", 413: "Body over the forms' size limit",
                     415: "Not form-encoded and not JSON", 422: "No message, or too long",
                     429: "Too many submissions from this client"}))
    async def reply(token: str, request: Request,
                    hub: Hub = Depends(get_hub)) -> Response:  # noqa: B008 - FastAPI idiom
        try:
            link = check_status_token(config.secret, token, now())
        except CaseLinkExpiredError as exc:
            return problem("Your case", str(exc), 410)
        except CaseLinkError as exc:
            return problem("Your case", str(exc), 403)
        data: dict[str, Any] = {}
        try:
            if (wait := limiter.hit("help-reply:" + client(request))) is not None:
                raise SubmissionError(429, "Too many messages; please try again shortly.",
                                      headers={"Retry-After": str(int(wait) + 1)})
            data = await _payload(request, config.max_body_bytes)
            nonce, message = _reply(config, dict(data), now())
            await run_in_threadpool(_record_reply, hub, link.customer_id, link.case_id, nonce,
                                    message)
        except SubmissionError as exc:
            if exc.status in (400, 422):
                values = {"message": str(data.get("message", ""))[:MAX_REPLY]}
                return await run_in_threadpool(_status_page, hub, token, link.customer_id,
                                               link.case_id, values, exc.errors, exc.status,
                                               exc.headers)
            return problem("Your case", exc.message, exc.status, exc.headers)
        except (CustomerNotFoundError, DomainError) as exc:
            return problem("Your case", str(exc), 409)
        return RedirectResponse(f"/help/cases/{token}#thread", status_code=303,
                                headers=dict(SELF_SERVICE_HEADERS))

    return router


def _reply(config: FormsConfig, data: dict[str, Any], at: datetime) -> tuple[str, str]:
    if str(data.pop(config.honeypot, "") or "").strip():
        raise SubmissionError(400, "The message was refused as automated.")
    raw = data.pop("_token", None)
    try:
        token = check_token(config.secret, raw if isinstance(raw, str) else None, REPLY_FORM,
                            at.timestamp(), min_age_s=config.min_fill_s,
                            max_age_s=config.max_age_s)
    except TokenError as exc:
        raise SubmissionError(400, str(exc)) from exc
    message = data.pop("message", None)
    if data:
        raise SubmissionError(422, "Please correct the errors below.",
                              {k: "This field is not part of the form." for k in data})
    if not isinstance(message, str) or not message.strip():
        raise SubmissionError(422, "Please correct the errors below.",
                              {"message": "Enter your message."})
    if len(message) > MAX_REPLY or "\x00" in message:
        raise SubmissionError(422, "Please correct the errors below.", {
            "message": f"Keep your message under {MAX_REPLY:,} characters of text."})
    return token.nonce, message.strip()


def _record_reply(hub: Hub, customer_id: UUID, case_id: UUID, nonce: str, message: str) -> None:
    """The reply as an inbound web touchpoint, linked to the case (a waiting case resumes)."""
    case = ds.case_state(hub.customer(customer_id), str(case_id))
    if case["status"] not in ("open", "waiting", "resolved"):
        raise ds.CaseStateError("This case is closed; please send us a new request.")
    cmd = m.RecordWebForm(customer_id=customer_id, form_name=REPLY_FORM, submission_id=nonce,
                          fields={"message": message, "case_id": str(case_id)},
                          actor="web-status-link")
    result = hub.execute(cmd)
    key = hub.source_key_of(cmd)
    hub.execute(sc.LinkTouchpoint(customer_id=customer_id, case_id=case_id,
                                  event_id=UUID(result.event_ids[0]), actor="web-status-link",
                                  causation_id=key))
    if case["status"] == "waiting":
        hub.execute(sc.ResumeCase(customer_id=customer_id, case_id=case_id,
                                  source_key=f"{key}:resume", actor="web-status-link"))


def _reply_form(config: FormsConfig, token: str, at: datetime, values: dict[str, str],
                errors: dict[str, str]) -> str:
    error = errors.get("message")
    described = ' aria-describedby="field-message-error" aria-invalid="true"' if error else ""
    shown_error = (f'<p class="error" id="field-message-error"><span class="visually-hidden">'
                   f"Error: </span>{escape(error)}</p>") if error else ""
    others = "".join(f'<p class="error" role="alert">{escape(v)}</p>'
                     for k, v in errors.items() if k != "message")
    hp = escape(config.honeypot)
    return (f'<h2>Answer us</h2>{others}<form method="post" action="/help/cases/{escape(token)}" '
            'novalidate>'
            f'<input type="hidden" name="_token" value="'
            f'{escape(issue_token(config.secret, REPLY_FORM, at.timestamp()))}">'
            f'<label for="field-message">Your message</label>{shown_error}'
            f'<textarea id="field-message" name="message" required aria-required="true" '
            f'maxlength="{MAX_REPLY}"{described}>{escape(values.get("message", ""))}</textarea>'
            f'<div class="hp" aria-hidden="true"><label for="field-{hp}">Leave this empty'
            f'</label><input type="text" id="field-{hp}" name="{hp}" tabindex="-1" '
            'autocomplete="off" value=""></div>'
            '<button type="submit">Send</button></form>')


def _thread(events: Any, case_id: str, touchpoints: set[str]) -> tuple[
        list[tuple[str, str, str]], str]:
    """The case's public thread (time, who, text) and its subject; never internal notes."""
    entries: list[tuple[str, str, str]] = []
    subject = ""
    for e in events:
        at = e.occurred_at.astimezone(UTC).isoformat()
        if str(e.event_id) in touchpoints:
            who = "You" if e.direction == "inbound" else "Our team"
            entries.append((at, who, _touch_text(e)))
        elif getattr(e, "case_id", None) != case_id:
            continue
        elif isinstance(e, ds.CaseOpened):
            subject = e.subject or ""
        elif isinstance(e, ds.CaseNoteAdded) and e.visibility == "shared":
            entries.append((at, "Our team", e.text or ""))
        elif isinstance(e, ds.CaseResolved):
            entries.append((at, "Our team", "We marked your case as resolved."))
        elif isinstance(e, ds.CaseReopened):
            entries.append((at, "Our team", "We reopened your case."))
        elif isinstance(e, ds.CaseWaitingOnCustomer):
            entries.append((at, "Our team", "We are waiting for your answer."))
        elif isinstance(e, ds.CaseClosed):
            entries.append((at, "Our team", "We closed your case."))
    return entries, subject


def _touch_text(e: Customer.Event) -> str:
    if isinstance(e, Customer.WebFormSubmitted):
        fields = e.fields or {}
        return fields.get("message") or fields.get("description") or "(a web form)"
    if isinstance(e, Customer.EmailRecorded | Customer.EmailQueued | Customer.EmailSent):
        return "\n".join(x for x in (getattr(e, "subject", None),
                                     getattr(e, "body_text", None)) if x) or "(an email)"
    return {"phone": "(a phone call)", "fax": "(a fax)", "visit": "(a visit)"}.get(
        e.channel, "(a message)")
