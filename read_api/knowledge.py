"""The knowledge base for staff: search articles, read one with its versions and the cases
linked to it, and the self-service deflection figure as of a time.

| Route                              | Roles                                              |
|------------------------------------|----------------------------------------------------|
| GET /knowledge/articles            | agent, sales, marketing, service, dispatcher, analyst, auditor (every article not retired); partner (published public ones only) |
| GET /knowledge/articles/{id}       | the same (a partner: the published version, no versions, no cases) |
| GET /knowledge/deflection          | service, agent, analyst                            |

Articles, views and links hold no personal data (staff texts, ids, times), so nothing
here is recorded in the read audit. The public reads the published public articles on
the self-service pages (``/help``, no key).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from projections.knowledge.view import MAX_RESULTS, KnowledgeView
from read_api.dependencies import (
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    is_partner,
    responses,
)

READ_ROLES = ("agent", "sales", "marketing", "service", "dispatcher", "analyst", "auditor",
              "partner")
DEFLECTION_ROLES = ("service", "agent", "analyst")
_ARTICLE = "7a1c9e2d-4b3f-4e5a-8c6d-0f1e2d3c4b5a"
_AT = "2026-11-24T09:30:00+00:00"


class ArticleSummaryPublic(BaseModel):
    article_id: str
    title: str = Field(description="Of the current version.")
    tags: list[str]
    language: str
    visibility: str = Field(description="internal or public (current version).")
    status: str = Field(description="draft, published or retired.")
    version: int = Field(description="The current (latest) version.")
    published_version: int | None = Field(description="The version the public sees.")
    updated_at: str | None


class ArticleVersionPublic(BaseModel):
    version: int
    title: str
    body: str = Field(description="Markdown, as written (render it with a safe renderer).")
    tags: list[str]
    language: str
    visibility: str
    actor: str
    event_id: str
    at: str | None


class LinkedCasePublic(BaseModel):
    case_id: str
    customer_id: str
    relation: str = Field(description="resolved, or asked-after (help asked after reading).")
    at: str | None
    event_id: str


class ArticlesPublic(BaseModel):
    items: list[ArticleSummaryPublic]

    model_config = {"json_schema_extra": {"examples": [{"items": [{
        "article_id": _ARTICLE, "title": "Resetting the boiler", "tags": ["boiler"],
        "language": "en", "visibility": "public", "status": "published", "version": 2,
        "published_version": 2, "updated_at": _AT}]}]}}


class ArticleDetailPublic(ArticleSummaryPublic):
    shown: ArticleVersionPublic | None = Field(description="The current version (a partner: "
                                                           "the published one).")
    versions: list[ArticleVersionPublic] | None = Field(
        default=None, description="Every version, oldest first (not for partners).")
    cases: list[LinkedCasePublic] | None = Field(
        default=None, description="Cases linked to the article (not for partners).")


class DeflectionArticlePublic(BaseModel):
    article_id: str
    title: str
    views: int
    led_to_case: int
    deflected: int
    cases_resolved: int = Field(description="Cases staff linked as resolved by the article.")


class DeflectionPublic(BaseModel):
    as_of: str
    days: int
    since: str | None
    views: int = Field(description="Self-service views whose N-day window closed by as_of.")
    led_to_case: int = Field(description="Of those, views from which \"still need help\" "
                                         "opened a case within N days.")
    deflected: int = Field(description="views − led_to_case.")
    rate: float | None = Field(description="deflected / views (None without views).")
    pending: int = Field(description="Views still inside their window: not yet counted.")
    articles: list[DeflectionArticlePublic]

    model_config = {"json_schema_extra": {"examples": [{
        "as_of": _AT, "days": 7, "since": None, "views": 40, "led_to_case": 6,
        "deflected": 34, "rate": 0.85, "pending": 5, "articles": [{
            "article_id": _ARTICLE, "title": "Resetting the boiler", "views": 40,
            "led_to_case": 6, "deflected": 34, "cases_resolved": 3}]}]}}


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(prefix="/knowledge", tags=["knowledge"])
    view = KnowledgeView(deps.views.store)
    reader = deps.reader(*READ_ROLES)
    figures = deps.reader(*DEFLECTION_ROLES)

    @router.get("/articles", summary="Search the knowledge base (full text)",
                response_class=OrjsonResponse, response_model=ArticlesPublic,
                responses=responses(409, 503))
    async def articles(
        who: Annotated[Principal, Depends(reader)],
        q: Annotated[str, Query(max_length=200, description="Words, each matched as a "
                                "prefix; all must match. Empty: newest first.",
                                openapi_examples={"words": {"value": "boiler reset"}})] = "",
        tag: Annotated[str | None, Query(max_length=60)] = None,
        language: Annotated[str | None, Query(max_length=20)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 20,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        items = await deps.call(lambda: view.search(q, public=is_partner(who),
                                                    language=language, tag=tag, limit=limit))
        return OrjsonResponse({"items": items})

    @router.get("/articles/{article_id}", summary="One article, its versions and linked cases",
                response_class=OrjsonResponse, response_model=ArticleDetailPublic,
                responses=responses(404, 409, 503, s404="no article 7a1c9e2d-…"))
    async def article(
        article_id: UUID,
        who: Annotated[Principal, Depends(reader)],
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        found = await deps.call(lambda: view.article(str(article_id), public=is_partner(who)))
        if found is None:
            raise HTTPException(404, detail=f"no article {article_id}")
        return OrjsonResponse(found)

    @router.get("/deflection", summary="Self-service views that did not lead to a case",
                response_class=OrjsonResponse, response_model=DeflectionPublic,
                responses=responses(409, 503))
    async def deflection(
        who: Annotated[Principal, Depends(figures)],
        as_of: Annotated[datetime | None, Query(description="Count as of this time (default "
                                                "now). Views within `days` before it are "
                                                "pending.", openapi_examples={
                                                    "then": {"value": _AT}})] = None,
        days: Annotated[int, Query(ge=0, le=365, description="N: days a view has to lead "
                                   "to a case.")] = 7,
        since: Annotated[datetime | None, Query(description="Count views from here on.")] = None,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        at = _aware(as_of) if as_of else datetime.now(UTC)
        result: dict[str, Any] = await deps.call(
            lambda: view.deflection(at, days, _aware(since) if since else None))
        return OrjsonResponse(result)

    return router


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise HTTPException(400, detail="give times with a UTC offset (…+00:00)")
    return moment
