"""The public self-service pages at ``/help`` (no API key), in the public forms' style.

* ``GET /help?q=…`` searches the published public articles; ``GET /help/articles/<id>``
  shows one, its Markdown rendered by ``channels.web.safe_markdown`` (nothing in an
  article can run), and records the view (``RecordArticleView``, keyed by a fresh view id;
  views past the per-client rate limit are shown but not counted, so a crawler cannot
  inflate the figures).
* "Still need help?" leads to ``/help/articles/<id>/ask?view=<view id>``: the forms
  channel's service-request form with all its guards (render token, honeypot, minimum fill
  time, body limit, rate limit, strict fields). A submission is recorded as the form's
  touchpoint (the article's id among its fields), opens a case from it, and links the
  article to the case as ``asked-after`` with the view id: that is what the deflection
  figure counts as a view that led to a case. Every step is keyed by the submission, so
  a double submit opens one case.
* ``/help/cases/<token>``: a case's status and its public thread (the customer's own
  contacts, shared notes and status changes; never internal notes), by a signed
  expiring link (``commands.case_links``): forged or altered → 403, expired → 410. Its
  reply form records the reply as an inbound web touchpoint linked to the case (keyed by
  the form's nonce: a double submit records once; rate-limited), resumes a case that was
  waiting on the customer, and redirects back to the status page.

Every answer carries ``SELF_SERVICE_HEADERS``: a Content-Security-Policy with no
scripts at all (the pages need none), no framing, same-origin referrers (the status
link's token never leaves the site), ``nosniff`` and ``no-store``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any, Protocol
from urllib.parse import quote, urlencode
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from channels.web.config import FormsConfig
from channels.web.forms import FormsEndpoint, SubmissionError, _complete_prospect, _payload
from channels.web.guards import TokenError, check_token, issue_token
from channels.web.html import render_form, render_page, render_problem
from channels.web.safe_markdown import render as render_markdown
from commands import knowledge as kc
from commands import messages as m
from commands import service as sc
from commands.case_links import CaseLinkError, CaseLinkExpiredError, check_status_token
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from commands.records import RecordNotFoundError
from domain import service as ds
from domain.customer import Customer
from domain.errors import DomainError

FORM = "service-request"
REPLY_FORM = "case-reply"
TITLE = "Help centre"
MAX_REPLY = 5000
_CASES = uuid5(NAMESPACE_URL, "touchstream:self-service-case")
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


class ArticleCatalogue(Protocol):
    """The published public articles (the knowledge read model, public side)."""

    def search(self, text: str) -> list[dict[str, Any]]:
        """Summaries (``article_id``, ``title``, ``tags``) matching ``text``, best first."""

    def article(self, article_id: str) -> dict[str, Any] | None:
        """The article with its published version under ``shown``; None if not public."""


def case_id_for(submission_id: str) -> UUID:
    """The case a "still need help" submission opens (the same on every retry)."""
    return uuid5(_CASES, submission_id)


def _html(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={**SELF_SERVICE_HEADERS,
                                                           **(headers or {})})


def _problem(title: str, message: str, status: int,
             headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return _html(render_problem(title, message), status, headers)


def _search_form(q: str) -> str:
    return ('<form method="get" action="/help" role="search">'
            '<label for="q">Search the help articles</label>'
            f'<input type="search" id="q" name="q" maxlength="200" value="{escape(q)}">'
            '<button type="submit">Search</button></form>')


def selfservice_router(get_hub: Callable[[], Hub], config: FormsConfig,
                       catalogue: Callable[[], ArticleCatalogue]) -> APIRouter:
    """``/help``: public, no API key; abuse guarded as the module docstring says."""
    router = APIRouter(prefix="/help", tags=["self-service"])
    endpoint = FormsEndpoint(config)
    limiter = endpoint.limiter

    def now() -> datetime:
        return datetime.fromtimestamp(config.clock(), UTC)

    def client(request: Request) -> str:
        return endpoint.client_key(request)

    @router.get("", response_class=HTMLResponse, summary="Search the help articles")
    def home(q: str = "") -> HTMLResponse:
        q = q[:200]
        found = catalogue().search(q)
        items = "".join(f'<li><a href="/help/articles/{quote(a["article_id"])}">'
                        f'{escape(a["title"])}</a></li>' for a in found)
        heading = f"Articles matching “{escape(q)}”" if q.strip() else "Articles"
        listing = f"<ul>{items}</ul>" if found else "<p>No articles match. Try other words.</p>"
        body = (f"<h1>{TITLE}</h1>{_search_form(q)}"
                f'<h2 id="results">{heading}</h2>'
                f'<div role="status">{len(found)} found</div>{listing}')
        return _html(render_page(TITLE, body))

    @router.get("/articles/{article_id}", response_class=HTMLResponse,
                summary="Read a help article", responses={404: {"description": "No such "
                                                                "public article"}})
    def article(article_id: str, request: Request,
                hub: Hub = Depends(get_hub)) -> HTMLResponse:  # noqa: B008 - FastAPI idiom
        found = _public_article(catalogue(), article_id)
        if found is None:
            return _problem(TITLE, "There is no such help article.", 404)
        view_id = uuid4()
        if limiter.hit("help-view:" + client(request)) is None:
            try:
                hub.execute(kc.RecordArticleView(article_id=UUID(found["article_id"]),
                                                 view_id=view_id, occurred_at=now(),
                                                 actor="self-service"))
            except (DomainError, RecordNotFoundError):
                pass  # retired or unpublished since the read model saw it: not counted
        shown = found["shown"]
        ask = f"/help/articles/{quote(found['article_id'])}/ask?{urlencode({'view': view_id})}"
        body = (f'<p><a href="/help">Back to the {TITLE.lower()}</a></p>'
                f'<article lang="{escape(shown["language"])}"><h1>{escape(shown["title"])}</h1>'
                f'{render_markdown(shown["body"])}</article>'
                '<h2>Still need help?</h2>'
                f'<p><a href="{escape(ask)}" id="need-help">Ask our service team</a></p>')
        return _html(render_page(shown["title"], body))

    def ask_form(article: dict[str, Any], view: str | None, values: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, message: str | None = None,
                 status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        spec = endpoint.spec(FORM)
        query = f"?{urlencode({'view': view})}" if view else ""
        action = f"/help/articles/{quote(article['article_id'])}/ask{query}"
        html = render_form(spec, action, endpoint.token(FORM), config.honeypot, values, errors,
                           message)
        note = (f'<p id="about-article">About the article '
                f'“{escape(article["shown"]["title"])}”.</p>')
        return _html(html.replace("</h1>", "</h1>" + note, 1), status, headers)

    @router.get("/articles/{article_id}/ask", response_class=HTMLResponse,
                summary="The service-request form, from an article",
                responses={404: {"description": "No such public article"}})
    def ask(article_id: str, view: str | None = None) -> HTMLResponse:
        found = _public_article(catalogue(), article_id)
        if found is None:
            return _problem(TITLE, "There is no such help article.", 404)
        return ask_form(found, _uuid_text(view))

    @router.post("/articles/{article_id}/ask", response_class=HTMLResponse, status_code=201,
                 summary="Ask for help after reading an article (opens a case)",
                 responses={200: {"description": "Already received (the same form again)"},
                            400: {"description": "Automated, or the render token is "
                                                 "missing, forged or expired"},
                            404: {"description": "No such public article"},
                            413: {"description": "Body over the form's size limit"},
                            415: {"description": "Not form-encoded and not JSON"},
                            422: {"description": "Invalid fields"},
                            429: {"description": "Too many submissions from this client"}})
    async def ask_submit(article_id: str, request: Request, view: str | None = None,
                         hub: Hub = Depends(get_hub)) -> Response:  # noqa: B008
        found = await run_in_threadpool(_public_article, catalogue(), article_id)
        if found is None:
            return _problem(TITLE, "There is no such help article.", 404)
        view_id = _uuid_text(view)
        data: dict[str, Any] = {}
        try:
            if (wait := limiter.hit(client(request))) is not None:
                raise SubmissionError(429, "Too many submissions; please try again shortly.",
                                      headers={"Retry-After": str(int(wait) + 1)})
            data = await _payload(request, config.max_body_bytes)
            reference, cmd = endpoint.check(FORM, dict(data))
            cmd = cmd.model_copy(update={
                "fields": {**cmd.fields, "article_id": found["article_id"]}})
            opened = await run_in_threadpool(_ask, hub, cmd, found["article_id"], view_id)
        except SubmissionError as exc:
            if exc.status in (400, 422):
                values = {k: v for k, v in data.items()
                          if isinstance(v, str) and k not in ("_token", config.honeypot)}
                return ask_form(found, view_id, values, exc.errors, exc.message, exc.status,
                                exc.headers)
            return _problem(TITLE, exc.message, exc.status, exc.headers)
        recorded, case_id = opened
        case = (f" Your case number is <strong id=\"case-id\">{escape(str(case_id))}</strong>;"
                " we will email you a link where you can follow it and answer us."
                if case_id else "")
        body = (f'<h1 id="thanks">Thank you</h1><p role="status">We have received your '
                f"request. Your reference is <strong>{escape(reference)}</strong>.{case}</p>"
                f'<p><a href="/help">Back to the {TITLE.lower()}</a></p>')
        return _html(render_page(f"Thank you — {TITLE}", body), 201 if recorded else 200)

    @router.get("/cases/{token}", response_class=HTMLResponse,
                summary="A case's status and public thread, by its signed link",
                responses={403: {"description": "Not a link of ours (or altered)"},
                           404: {"description": "The case is no longer there"},
                           410: {"description": "The link has expired"}})
    def status(token: str, hub: Hub = Depends(get_hub)) -> HTMLResponse:  # noqa: B008
        try:
            link = check_status_token(config.secret, token, now())
            return _status_page(hub, token, link.customer_id, link.case_id)
        except CaseLinkExpiredError as exc:
            return _problem("Your case", str(exc), 410)
        except CaseLinkError as exc:
            return _problem("Your case", str(exc), 403)
        except (CustomerNotFoundError, DomainError):
            return _problem("Your case", "This case is no longer available.", 404)

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
        return _html(render_page("Your case", "".join(body)), status, headers)

    @router.post("/cases/{token}", response_class=HTMLResponse,
                 summary="Reply on a case through its signed link",
                 responses={303: {"description": "Recorded; back to the status page"},
                            400: {"description": "Automated, or the render token is "
                                                 "missing, forged or expired"},
                            403: {"description": "Not a link of ours (or altered)"},
                            409: {"description": "The case is closed"},
                            410: {"description": "The link has expired"},
                            422: {"description": "No message, or too long"},
                            429: {"description": "Too many submissions from this client"}})
    async def reply(token: str, request: Request,
                    hub: Hub = Depends(get_hub)) -> Response:  # noqa: B008 - FastAPI idiom
        try:
            link = check_status_token(config.secret, token, now())
        except CaseLinkExpiredError as exc:
            return _problem("Your case", str(exc), 410)
        except CaseLinkError as exc:
            return _problem("Your case", str(exc), 403)
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
            return _problem("Your case", exc.message, exc.status, exc.headers)
        except (CustomerNotFoundError, DomainError) as exc:
            return _problem("Your case", str(exc), 409)
        return RedirectResponse(f"/help/cases/{token}#thread", status_code=303,
                                headers=dict(SELF_SERVICE_HEADERS))

    return router


def _uuid_text(value: str | None) -> str | None:
    try:
        return str(UUID(value)) if value else None
    except ValueError:
        return None


def _public_article(catalogue: ArticleCatalogue, article_id: str) -> dict[str, Any] | None:
    if _uuid_text(article_id) is None:
        return None
    found = catalogue.article(str(UUID(article_id)))
    return found if found and found.get("shown") else None


def _ask(hub: Hub, cmd: m.RecordWebForm, article_id: str,
         view_id: str | None) -> tuple[bool, UUID | None]:
    """Record the submission, open its case and link the article: each once."""
    try:
        result = hub.execute(cmd)
    except DomainError as exc:
        raise SubmissionError(422, "Please correct the errors below.",
                              {"email": str(exc)}) from exc
    _complete_prospect(hub, cmd, result)
    if not result.customer_id or not result.event_ids:
        return not result.duplicate, None  # held for triage: staff open the case
    customer_id, case_id = UUID(result.customer_id), case_id_for(cmd.submission_id)
    key = hub.source_key_of(cmd)
    subject = (cmd.fields.get("product") or "Service request")[:200]
    hub.execute(sc.OpenCase(customer_id=customer_id, case_id=case_id, category="self-service",
                            channel="web", queue="self-service", subject=subject,
                            origin_event_id=UUID(result.event_ids[0]), actor="self-service",
                            causation_id=key))
    hub.execute(kc.LinkArticleToCase(customer_id=customer_id, case_id=case_id,
                                     article_id=UUID(article_id), relation="asked-after",
                                     view_id=UUID(view_id) if view_id else None,
                                     actor="self-service", causation_id=key))
    return not result.duplicate, case_id


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
