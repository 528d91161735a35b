"""Command routes of the knowledge base: ``POST /commands/<name>`` to write, revise,
publish and retire articles (service and agents), to link an article to a case, and the
view the self-service page records (routed too, for a page served outside the hub)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commands import knowledge as kc
from commands import messages as m

_WRITERS = ("service", "agent")
_ARTICLE = "7a1c9e2d-4b3f-4e5a-8c6d-0f1e2d3c4b5a"
_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_CASE = "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f"
_CONTENT = {"title": "Resetting the boiler after a power cut",
            "body": "1. Switch the boiler **off** at the wall.\n2. Wait 30 seconds.\n"
                    "3. Switch it on and press *Reset* for 5 seconds.",
            "tags": ["boiler", "power"], "language": "en", "visibility": "public"}

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "create-article": (kc.CreateArticle, "Write a knowledge-base article (a draft, version 1)",
                       {**_CONTENT, "article_id": _ARTICLE, "source_key": "kb:boiler-reset"}),
    "revise-article": (kc.ReviseArticle, "Write the next version of an article",
                       {**_CONTENT, "article_id": _ARTICLE,
                        "body": "1. Switch the boiler off.\n2. Wait a minute.\n3. Reset."}),
    "publish-article": (kc.PublishArticle, "Publish an article's current version",
                        {"article_id": _ARTICLE}),
    "retire-article": (kc.RetireArticle, "Retire an article (for good)",
                       {"article_id": _ARTICLE, "reason_code": "product-discontinued"}),
    "link-article": (kc.LinkArticleToCase, "Link an article to a case it resolved", {
        "customer_id": _CID, "case_id": _CASE, "article_id": _ARTICLE,
        "relation": "resolved"}),
    "record-article-view": (kc.RecordArticleView, ("Record a self-service view of a public "
                            "article (the self-service page sends it)"), {
                                "article_id": _ARTICLE,
                                "view_id": "c0ffee00-1234-4abc-8def-000000000001"}),
}

#: route name → roles admitted (admin is always admitted)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    **{name: _WRITERS for name in COMMANDS},
    "record-article-view": ("adapter",),
}
