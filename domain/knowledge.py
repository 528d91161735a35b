"""Knowledge base: articles, their versions, the cases they resolved, self-service views.

An ``Article`` is a record (its own stream, no personal data: staff write the
articles, nobody's case is in them). Every create or revise is a new version
(``Article.Created`` is version 1, each ``Revised`` the next); ``Published``
names the version the public sees, so a revision after publishing stays a
draft until it is published in turn. A retired article is shown to nobody and
cannot be revised or published again.

Self-service views are anonymous: a view has no customer. They are recorded on
an ``ArticleViews`` record per article and UTC day (so one article's stream
does not grow with its readers), one event per view, keyed by the view id the
page issued. A case opened through "still need help" carries that view id, which
is how a view is known to have *led to a case*; a view that led to none within N
days counts as deflected (cases opened by other channels after reading cannot be
attributed to an anonymous view, and are not).

A case linked to an article (``CaseArticleLinked``, on the customer's stream,
ids and codes only) says the article resolved it (``resolved``) or that the
customer asked for help after reading it (``asked-after``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.customer import Customer, Provenance
from domain.errors import DomainError
from domain.records import Record
from domain.service import case_state

AREA = "knowledge"
VISIBILITIES = ("internal", "public")
RELATIONS = ("resolved", "asked-after")
MAX_TAGS = 20
_VIEW_DAYS = uuid5(NAMESPACE_URL, "touchstream:article-views")


class ArticleStateError(DomainError):
    """Raised when an article cannot make the asked move (retired, nothing to publish…)."""


def check_fields(title: str, body: str, tags: list[str], language: str,
                 visibility: str) -> list[str]:
    """The tags in their one canonical form (lower-case, sorted, once), or a clear error."""
    if visibility not in VISIBILITIES:
        raise ArticleStateError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    if not title.strip() or not body.strip():
        raise ArticleStateError("an article needs a title and a body")
    if not language or len(language) > 20:
        raise ArticleStateError("language is a tag like en or de-CH")
    clean = sorted({t.strip().casefold() for t in tags if t.strip()})
    if len(clean) > MAX_TAGS:
        raise ArticleStateError(f"at most {MAX_TAGS} tags")
    return clean


class Article(Record):
    """One knowledge-base article and its versions."""

    class Created(Record.Created):
        title: str
        body: str
        tags: list[str]
        language: str
        visibility: str

    class Revised(Record.Event):
        version: int
        title: str
        body: str
        tags: list[str]
        language: str
        visibility: str

        def apply(self, aggregate: Any) -> None:
            aggregate.version_no = self.version
            aggregate.visibility = self.visibility

    class Published(Record.Event):
        version: int

        def apply(self, aggregate: Any) -> None:
            aggregate.state = "published"
            aggregate.published_version = self.version

    class Retired(Record.Event):
        reason_code: str

        def apply(self, aggregate: Any) -> None:
            aggregate.state = "retired"

    def __init__(self, title: str, body: str, tags: list[str], language: str, visibility: str,
                 **_: Any) -> None:
        self.version_no = 1
        self.visibility = visibility
        self.state = "draft"
        self.published_version: int | None = None

    def revise(self, fields: dict[str, Any], *, title: str, body: str, tags: list[str],
               language: str, visibility: str) -> None:
        if self.state == "retired":
            raise ArticleStateError(f"article {self.id} is retired; it cannot be revised")
        clean = check_fields(title, body, tags, language, visibility)
        self.trigger_event(self.Revised, version=self.version_no + 1, title=title, body=body,
                           tags=clean, language=language, visibility=visibility, **fields)

    def publish(self, fields: dict[str, Any]) -> None:
        if self.state == "retired":
            raise ArticleStateError(f"article {self.id} is retired; it cannot be published")
        if self.published_version == self.version_no:
            raise ArticleStateError(f"version {self.version_no} is published already")
        self.trigger_event(self.Published, version=self.version_no, **fields)

    def retire(self, fields: dict[str, Any], reason_code: str) -> None:
        if self.state == "retired":
            raise ArticleStateError(f"article {self.id} is retired already")
        self.trigger_event(self.Retired, reason_code=reason_code, **fields)

    def viewable(self) -> bool:
        """Whether the public may read it: published, public, not retired."""
        return self.state == "published" and self.visibility == "public"


class ArticleViews(Record):
    """The self-service views of one article on one UTC day."""

    class Started(Record.Created):
        article_id: str
        day: str

    class Viewed(Record.Event):
        article_id: str
        view_id: str

    def __init__(self, article_id: str, day: str, **_: Any) -> None:
        self.article_id = article_id
        self.day = day


def views_record_id(article_id: UUID, day: str) -> UUID:
    """The id of an article's views record for a day (``YYYY-MM-DD``, UTC)."""
    return uuid5(_VIEW_DAYS, f"{article_id}|{day}")


# -- cases --------------------------------------------------------------------
class CaseArticleLinked(Customer.BusinessEvent):
    case_id: str
    article_id: str
    relation: str
    view_id: str | None

    def apply(self, aggregate: Any) -> None:
        links = aggregate.area(AREA).setdefault("links", {}).setdefault(self.case_id, [])
        links.append(f"{self.article_id}|{self.relation}")


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (CaseArticleLinked,)


def link_article(customer: Customer, prov: Provenance, case_id: str, article_id: str,
                 relation: str, view_id: str | None) -> None:
    """Link an article to one of the customer's cases (once per article and relation)."""
    if relation not in RELATIONS:
        raise ArticleStateError(f"relation must be one of {', '.join(RELATIONS)}")
    case_state(customer, case_id)
    seen = customer.area(AREA).get("links", {}).get(case_id, [])
    if f"{article_id}|{relation}" in seen:
        return
    customer.record_business(CaseArticleLinked, replace(prov, direction="internal"),
                             case_id=case_id, article_id=article_id, relation=relation,
                             view_id=view_id)
