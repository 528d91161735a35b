"""The knowledge read model over the real write model, on SQLite (FTS5) and PostgreSQL
(tsvector) alike: versions and publishing, full-text search for staff and the public,
cases linked to articles, the deflection figure as of a time; a rebuild equals the live
model; commands are idempotent by source key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from commands import knowledge as kc
from commands import messages as m
from commands import service as sc
from domain.errors import DomainError
from projections import registry
from projections.engine import Worker
from projections.knowledge.view import KnowledgeView
from replays.rebuild import rebuild
from touchstream.bootstrap import Dependencies, bootstrap

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def deps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dependencies]:
    found = bootstrap(dict(request.getfixturevalue(f"{request.param}_env")))
    yield found
    found.close()


def _at(days: float) -> datetime:
    return NOW + timedelta(days=days)


def test_articles_search_links_deflection_and_rebuild(deps: Dependencies) -> None:
    hub = deps.hub
    boiler = UUID(hub.execute(kc.CreateArticle(
        title="Resetting the boiler", body="Switch it **off**, wait, press Reset. Kühlung.",
        tags=["Boiler", "power"], visibility="public", source_key="kb-1",
        occurred_at=_at(-30))).customer_id)
    again = hub.execute(kc.CreateArticle(title="Resetting the boiler", body="x",
                                         source_key="kb-1"))
    assert again.duplicate and UUID(again.customer_id) == boiler
    internal = uuid4()
    hub.execute(kc.CreateArticle(article_id=internal, title="Refund approvals",
                                 body="Managers approve refunds over 500.", tags=["billing"],
                                 occurred_at=_at(-30)))
    hub.execute(kc.PublishArticle(article_id=boiler, occurred_at=_at(-29)))
    hub.execute(kc.PublishArticle(article_id=internal, occurred_at=_at(-29)))
    # a revision after publishing stays a draft: the public still reads version 1
    hub.execute(kc.ReviseArticle(article_id=boiler, title="Resetting the boiler",
                                 body="Switch it off and wait a whole minute (thermostat).",
                                 tags=["boiler"], visibility="public", occurred_at=_at(-28)))
    old = uuid4()
    hub.execute(kc.CreateArticle(article_id=old, title="Refund form (old)", body="Fax it.",
                                 occurred_at=_at(-30)))
    hub.execute(kc.RetireArticle(article_id=old, occurred_at=_at(-27)))
    with pytest.raises(DomainError):
        hub.execute(kc.ReviseArticle(article_id=old, title="t", body="b"))
    # views: three a month ago, one led to a case; one yesterday (still pending)
    views = [uuid4() for _ in range(4)]
    for i, view in enumerate(views[:3]):
        hub.execute(kc.RecordArticleView(article_id=boiler, view_id=view,
                                         occurred_at=_at(-20 + i * 0.01)))
    hub.execute(kc.RecordArticleView(article_id=boiler, view_id=views[0],
                                     occurred_at=_at(-20)))  # a retry: counted once
    hub.execute(kc.RecordArticleView(article_id=boiler, view_id=views[3], occurred_at=_at(-1)))
    with pytest.raises(DomainError):  # internal articles have no self-service views
        hub.execute(kc.RecordArticleView(article_id=internal, view_id=uuid4()))
    ada, case, other = uuid4(), uuid4(), uuid4()
    hub.execute(m.RegisterCustomer(customer_id=ada, name="Ada", occurred_at=_at(-40)))
    for c in (case, other):
        hub.execute(sc.OpenCase(customer_id=ada, case_id=c, category="repair", subject="Boiler",
                                occurred_at=_at(-19)))
    hub.execute(kc.LinkArticleToCase(customer_id=ada, case_id=case, article_id=boiler,
                                     relation="asked-after", view_id=views[0],
                                     occurred_at=_at(-19)))
    hub.execute(kc.LinkArticleToCase(customer_id=ada, case_id=other, article_id=boiler,
                                     occurred_at=_at(-18)))
    assert hub.execute(kc.LinkArticleToCase(customer_id=ada, case_id=other, article_id=boiler,
                                            occurred_at=_at(-18))).duplicate

    db = deps.read_store.connect()
    source = deps.event_source()
    try:
        Worker(db, source, [(registry.get("knowledge"), None)]).catch_up()
        view = KnowledgeView(deps.read_store)
        # staff search the current version, the public the published one
        assert [a["article_id"] for a in view.search("thermo", public=False)] == [str(boiler)]
        assert view.search("thermo", public=True) == []
        assert [a["article_id"] for a in view.search("Kühl", public=True)] == [str(boiler)]
        assert [a["article_id"] for a in view.search("boil reset", public=True)] == [
            str(boiler)]
        assert view.search("refund", public=True) == []  # internal
        assert [a["article_id"] for a in view.search("refund", public=False)] == [str(internal)]
        assert view.search("\" OR * NEAR(", public=False) == []  # query syntax is just words
        assert {a["article_id"] for a in view.search("", public=False, tag="BOILER")} == {
            str(boiler)}
        public = view.article(str(boiler), public=True)
        assert public is not None and public["shown"]["version"] == 1
        assert "Kühlung" in public["shown"]["body"] and "cases" not in public
        assert view.article(str(internal), public=True) is None
        staff = view.article(str(boiler), public=False)
        assert staff is not None and [v["version"] for v in staff["versions"]] == [1, 2]
        assert {(c["case_id"], c["relation"]) for c in staff["cases"]} == {
            (str(case), "asked-after"), (str(other), "resolved")}

        figure = view.deflection(NOW, days=7)
        assert (figure["views"], figure["led_to_case"], figure["deflected"],
                figure["pending"]) == (3, 1, 2, 1)
        assert figure["articles"][0]["cases_resolved"] == 1
        # as of before the case was opened, the view had not led to one yet
        earlier = view.deflection(_at(-19.5), days=0)
        assert (earlier["views"], earlier["led_to_case"]) == (3, 0)

        (result,) = rebuild(deps.read_store, source, [registry.get("knowledge")],
                            verify_only=True, batch=4)
        assert result.comparison.equal, [d.describe() for d in result.comparison.differences]
    finally:
        source.close()
        db.close()
