"""Knowledge-base commands: articles (create, revise, publish, retire), self-service views,
and the link from a customer's case to an article.

Articles and views are records (``commands.records.on_record``: once per source key on
every store); the link is on the customer's own stream (``Hub.record_on``). The rules
are in ``domain.knowledge``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import Field

from commands import messages as m
from commands.context import WriteContext
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import RecordProvenance, load, on_record
from domain import knowledge as k

ARTICLE = "article"
VIEWS = "article-views"
_IDS = uuid5(NAMESPACE_URL, "touchstream:articles")

Title = Annotated[str, Field(min_length=1, max_length=300)]
Body = Annotated[str, Field(min_length=1, max_length=100_000,
                            description="Markdown; raw HTML is shown as text, never run.")]
Tag = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[\w .-]+$")]
Language = Annotated[str, Field(min_length=2, max_length=20, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class ArticleContent(m.Command):
    """What every version of an article holds."""

    title: Title
    body: Body
    tags: Annotated[list[Tag], Field(max_length=k.MAX_TAGS)] = Field(default_factory=list)
    language: Language = "en"
    visibility: Literal["internal", "public"] = "internal"


class CreateArticle(ArticleContent):
    """Write a new article (a draft, version 1). Give ``source_key`` (or an
    Idempotency-Key) so a retry creates nothing new; the id derives from it if absent."""

    kind: Literal["create-article"] = "create-article"
    article_id: UUID | None = Field(default=None, description="Derived from the key if absent.")

    def default_source_key(self) -> str | None:
        return f"create-article:{self.article_id}" if self.article_id else None


class ReviseArticle(ArticleContent):
    """A new version of the article (all its content; a draft until published)."""

    kind: Literal["revise-article"] = "revise-article"
    article_id: UUID


class PublishArticle(m.Command):
    """Publish the article's current version."""

    kind: Literal["publish-article"] = "publish-article"
    article_id: UUID


class RetireArticle(m.Command):
    """Take the article out of use (for good)."""

    kind: Literal["retire-article"] = "retire-article"
    article_id: UUID
    reason_code: Code = "outdated"

    def default_source_key(self) -> str:
        return f"retire-article:{self.article_id}"


class RecordArticleView(m.Command):
    """One self-service view of an article (the page sends it; ``view_id`` is the id the
    page issued, so a retried view counts once)."""

    kind: Literal["record-article-view"] = "record-article-view"
    article_id: UUID
    view_id: UUID

    def default_source_key(self) -> str:
        return f"record-article-view:{self.view_id}"


class LinkArticleToCase(m.Command):
    """Link an article to a customer's case: it ``resolved`` the case, or the customer
    asked for help after reading it (``asked-after``, with the view id when known)."""

    kind: Literal["link-article"] = "link-article"
    customer_id: UUID
    case_id: UUID
    article_id: UUID
    relation: Literal["resolved", "asked-after"] = "resolved"
    view_id: UUID | None = None

    def default_source_key(self) -> str:
        return f"link-article:{self.case_id}:{self.article_id}:{self.relation}"


def article_id(w: WriteContext, cmd: CreateArticle) -> UUID:
    """The new article's id: the given one, else derived from the command's source key."""
    if cmd.article_id is not None:
        return cmd.article_id
    return uuid5(_IDS, w.naming.digest(source_key(cmd)))


def create_article(hub: Any, cmd: CreateArticle) -> Recorded:
    w: WriteContext = hub.context
    rid = article_id(w, cmd)
    tags = k.check_fields(cmd.title, cmd.body, list(cmd.tags), cmd.language, cmd.visibility)

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> k.Article:
        if record is not None:
            raise k.ArticleStateError(f"article {rid} exists already")
        return k.Article._create(  # type: ignore[no-any-return]
            k.Article.Created, id=w.naming.record(ARTICLE, rid), title=cmd.title,
            body=cmd.body, tags=tags, language=cmd.language, visibility=cmd.visibility,
            **next(provs).fields())

    return on_record(w, ARTICLE, rid, cmd, decide)


def _step(hub: Any, cmd: Any, step: Callable[[k.Article, dict[str, Any]], None]) -> Recorded:
    def decide(record: Any, provs: Iterator[RecordProvenance]) -> k.Article:
        if record is None:
            load(hub.context, ARTICLE, cmd.article_id)  # raises RecordNotFoundError
        step(record, next(provs).fields())
        return record  # type: ignore[no-any-return]

    return on_record(hub.context, ARTICLE, cmd.article_id, cmd, decide)


def revise_article(hub: Any, cmd: ReviseArticle) -> Recorded:
    return _step(hub, cmd, lambda a, f: a.revise(
        f, title=cmd.title, body=cmd.body, tags=list(cmd.tags), language=cmd.language,
        visibility=cmd.visibility))


def record_view(hub: Any, cmd: RecordArticleView) -> Recorded:
    """A view of a public, published article, on that article's record of the view's day."""
    w: WriteContext = hub.context
    article = load(w, ARTICLE, cmd.article_id)
    if not article.viewable():
        raise k.ArticleStateError(f"article {cmd.article_id} is not published for the public")
    day = (cmd.occurred_at or w.clock()).date().isoformat()
    rid = k.views_record_id(cmd.article_id, day)

    def decide(record: Any, provs: Iterator[RecordProvenance]) -> k.ArticleViews:
        if record is None:
            record = k.ArticleViews._create(
                k.ArticleViews.Started, id=w.naming.record(VIEWS, rid),
                article_id=str(cmd.article_id), day=day, **next(provs).fields())
        record.trigger_event(k.ArticleViews.Viewed, article_id=str(cmd.article_id),
                             view_id=str(cmd.view_id), **next(provs).fields())
        return record  # type: ignore[no-any-return]

    return on_record(w, VIEWS, rid, cmd, decide)


def link_article(hub: Any, cmd: LinkArticleToCase) -> Recorded:
    load(hub.context, ARTICLE, cmd.article_id)  # a link to no article is refused (404)
    return hub.record_on(cmd, cmd.customer_id, lambda c, p: k.link_article(
        c, next(iter(p)), str(cmd.case_id), str(cmd.article_id), cmd.relation,
        str(cmd.view_id) if cmd.view_id else None))


HANDLERS: dict[type, Callable[[Any, Any], Recorded]] = {
    CreateArticle: create_article,
    ReviseArticle: revise_article,
    PublishArticle: lambda hub, c: _step(hub, c, lambda a, f: a.publish(f)),
    RetireArticle: lambda hub, c: _step(hub, c, lambda a, f: a.retire(f, c.reason_code)),
    RecordArticleView: record_view,
    LinkArticleToCase: link_article,
}
