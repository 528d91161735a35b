"""Wiring the public self-service pages (``channels.web.selfservice``) to the knowledge
read model: the channel sees only published public articles, through ``PublicArticles``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from channels.web.selfservice import selfservice_router
from projections.knowledge.view import KnowledgeView
from projections.store import ReadStore
from touchstream.app import AppContext


class PublicArticles:
    """The public side of the knowledge read model (``ArticleCatalogue``)."""

    def __init__(self, store: ReadStore) -> None:
        self.view = KnowledgeView(store)

    def search(self, text: str) -> list[dict[str, Any]]:
        return list(self.view.search(text, public=True, limit=50))

    def article(self, article_id: str) -> dict[str, Any] | None:
        return self.view.article(article_id, public=True)


def selfservice_routes(ctx: AppContext) -> APIRouter:
    articles = PublicArticles(ctx.deps.read_store)
    return selfservice_router(ctx.hub, ctx.deps.forms, lambda: articles)
