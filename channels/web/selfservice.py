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
* ``/help/cases/<token>``: a case's status page by its signed link, with a reply form
  (``channels.web.case_status``, mounted here).

Every answer carries ``channels.web.case_status.SELF_SERVICE_HEADERS`` (a CSP without
scripts, no framing, same-origin referrers, ``nosniff``, ``no-store``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any, Protocol
from urllib.parse import quote, urlencode
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from channels.web.case_status import case_status_router, html_page, html_responses, problem
from channels.web.config import FormsConfig
from channels.web.forms import FormsEndpoint, SubmissionError, _payload, record_submission
from channels.web.html import render_form, render_page
from channels.web.safe_markdown import render as render_markdown
from commands import knowledge as kc
from commands import messages as m
from commands import service as sc
from commands.hub import Hub
from commands.records import RecordNotFoundError
from domain.errors import DomainError

FORM = "service-request"
TITLE = "Help centre"
_CASES = uuid5(NAMESPACE_URL, "touchstream:self-service-case")
class ArticleCatalogue(Protocol):
    """The published public articles (the knowledge read model, public side)."""

    def search(self, text: str) -> list[dict[str, Any]]:
        """Summaries (``article_id``, ``title``, ``tags``) matching ``text``, best first."""

    def article(self, article_id: str) -> dict[str, Any] | None:
        """The article with its published version under ``shown``; None if not public."""


def case_id_for(submission_id: str) -> UUID:
    """The case a "still need help" submission opens (the same on every retry)."""
    return uuid5(_CASES, submission_id)


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
        return html_page(render_page(TITLE, body))

    @router.get("/articles/{article_id}", response_class=HTMLResponse,
                summary="Read a help article",
                responses=html_responses({404: "No such public article"}))
    def article(article_id: str, request: Request,
                hub: Hub = Depends(get_hub)) -> HTMLResponse:  # noqa: B008 - FastAPI idiom
        found = _public_article(catalogue(), article_id)
        if found is None:
            return problem(TITLE, "There is no such help article.", 404)
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
        return html_page(render_page(shown["title"], body))

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
        return html_page(html.replace("</h1>", "</h1>" + note, 1), status, headers)

    @router.get("/articles/{article_id}/ask", response_class=HTMLResponse,
                summary="The service-request form, from an article",
                responses=html_responses({404: "No such public article"}))
    def ask(article_id: str, view: str | None = None) -> HTMLResponse:
        found = _public_article(catalogue(), article_id)
        if found is None:
            return problem(TITLE, "There is no such help article.", 404)
        return ask_form(found, _uuid_text(view))

    @router.post("/articles/{article_id}/ask", response_class=HTMLResponse, status_code=201,
                 summary="Ask for help after reading an article (opens a case)",
                 responses=html_responses({
                     200: "Already received (the same form again)",
                     400: "Automated, or the render token is missing, forged or expired",
                     404: "No such public article", 413: "Body over the form's size limit",
                     415: "Not form-encoded and not JSON", 422: "Invalid fields",
                     429: "Too many submissions from this client"}))
    async def ask_submit(article_id: str, request: Request, view: str | None = None,
                         hub: Hub = Depends(get_hub)) -> Response:  # noqa: B008
        found = await run_in_threadpool(_public_article, catalogue(), article_id)
        if found is None:
            return problem(TITLE, "There is no such help article.", 404)
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
            return problem(TITLE, exc.message, exc.status, exc.headers)
        recorded, case_id = opened
        case = (f" Your case number is <strong id=\"case-id\">{escape(str(case_id))}</strong>;"
                " we will email you a link where you can follow it and answer us."
                if case_id else "")
        body = (f'<h1 id="thanks">Thank you</h1><p role="status">We have received your '
                f"request. Your reference is <strong>{escape(reference)}</strong>.{case}</p>"
                f'<p><a href="/help">Back to the {TITLE.lower()}</a></p>')
        return html_page(render_page(f"Thank you — {TITLE}", body), 201 if recorded else 200)

    router.include_router(case_status_router(get_hub, config))
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
    result = record_submission(hub, cmd)
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
