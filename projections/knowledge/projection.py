"""The knowledge read model: articles (current and published version), their versions and
tags, self-service views, links to cases, and a full-text index.

Full-text search is SQLite FTS5 (``unicode61``, diacritics folded) or a PostgreSQL
``tsvector`` with a GIN index (the ``simple`` configuration: no stemming, the same for
every language). The index holds two rows per article: its current version (what staff
search) and its published version (what the public searches, only while it is published
and public). It is derived from the other tables, so a rebuild compares those, not the
index's internals. Nothing here is personal: article texts are staff's, links and views
are ids and times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from domain import knowledge as k
from projections.campaigns.projection import record_id
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db

_ARTICLE = ("article_id", "title", "tags", "language", "visibility", "status", "version",
            "published_version", "public", "created_us", "updated_us")
_VERSION = ("article_id", "version", "title", "body", "tags", "language", "visibility",
            "actor", "event_id", "at_us")
_TAG = ("tag", "article_id")
_VIEW = ("view_id", "article_id", "viewed_us")
_LINK = ("case_id", "article_id", "relation", "customer_id", "view_id", "at_us", "event_id")


class KnowledgeProjection(Projection):
    name = "knowledge"
    tables = (Table("article", ("article_id",), _ARTICLE),
              Table("version", ("article_id", "event_id"), _VERSION),
              Table("tag", ("tag", "article_id"), _TAG),
              Table("view", ("view_id",), _VIEW),
              Table("link", ("case_id", "article_id", "relation"), _LINK),
              Table("search", ("article_id", "scope")))  # derived: not compared
    consumes = (k.CaseArticleLinked, k.Article.Event, k.ArticleViews.Event)

    def ddl(self, dialect: str) -> list[str]:
        if dialect == "postgres":
            search = [("CREATE TABLE {search} (article_id TEXT NOT NULL, scope TEXT NOT NULL, "
                      "title TEXT NOT NULL, doc TSVECTOR NOT NULL, "
                      "PRIMARY KEY (article_id, scope))"),
                      "CREATE INDEX {search}_doc ON {search} USING GIN (doc)"]
        else:
            search = [("CREATE VIRTUAL TABLE {search} USING fts5(article_id UNINDEXED, "
                      "scope UNINDEXED, title, body, tags, "
                      "tokenize='unicode61 remove_diacritics 2')")]
        return [
            ("CREATE TABLE {article} (article_id TEXT PRIMARY KEY, title TEXT NOT NULL, "
             "tags TEXT NOT NULL, language TEXT NOT NULL, visibility TEXT NOT NULL, "
             "status TEXT NOT NULL, version INTEGER NOT NULL, published_version INTEGER, "
             "public INTEGER NOT NULL, created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL)"),
            ("CREATE TABLE {version} (article_id TEXT NOT NULL, version INTEGER NOT NULL, "
             "title TEXT NOT NULL, body TEXT NOT NULL, tags TEXT NOT NULL, "
             "language TEXT NOT NULL, visibility TEXT NOT NULL, actor TEXT NOT NULL, "
             "event_id TEXT NOT NULL, at_us BIGINT NOT NULL, PRIMARY KEY (article_id, version))"),
            ("CREATE TABLE {tag} (tag TEXT NOT NULL, article_id TEXT NOT NULL, "
             "PRIMARY KEY (tag, article_id))"),
            "CREATE INDEX {tag}_article ON {tag} (article_id)",
            ("CREATE TABLE {view} (view_id TEXT PRIMARY KEY, article_id TEXT NOT NULL, "
             "viewed_us BIGINT NOT NULL)"),
            "CREATE INDEX {view}_at ON {view} (viewed_us)",
            ("CREATE TABLE {link} (case_id TEXT NOT NULL, article_id TEXT NOT NULL, "
             "relation TEXT NOT NULL, customer_id TEXT NOT NULL, view_id TEXT, "
             "at_us BIGINT NOT NULL, event_id TEXT NOT NULL, "
             "PRIMARY KEY (case_id, article_id, relation))"),
            "CREATE INDEX {link}_article ON {link} (article_id)",
            "CREATE INDEX {link}_view ON {link} (view_id)",
            *search,
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            handler = _HANDLERS.get(type(e))
            if handler is not None:
                handler(db, t, e)


def _version(db: Db, t: Names, e: Any, aid: str, version: int) -> None:
    tags = orjson.dumps(list(e.tags)).decode()
    db.execute(f"INSERT INTO {t.version} ({', '.join(_VERSION)}) VALUES (?,?,?,?,?,?,?,?,?,?)",
               (aid, version, e.title, e.body, tags, e.language, e.visibility, e.actor,
                str(e.event_id), us(e.occurred_at)))
    db.execute(f"DELETE FROM {t.tag} WHERE article_id=?", (aid,))
    db.executemany(f"INSERT INTO {t.tag} (tag, article_id) VALUES (?,?)",
                   [(tag, aid) for tag in e.tags])
    _index(db, t, aid, "current", e.title, e.body, e.tags)


def _created(db: Db, t: Names, e: k.Article.Created) -> None:
    aid = record_id(e.originator_id, "article")
    at = us(e.occurred_at)
    db.execute(f"INSERT INTO {t.article} ({', '.join(_ARTICLE)}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               (aid, e.title, orjson.dumps(list(e.tags)).decode(), e.language, e.visibility,
                "draft", 1, None, 0, at, at))
    _version(db, t, e, aid, 1)


def _revised(db: Db, t: Names, e: k.Article.Revised) -> None:
    aid = record_id(e.originator_id, "article")
    db.execute(f"UPDATE {t.article} SET title=?, tags=?, language=?, visibility=?, version=?, "
               "updated_us=? WHERE article_id=?",
               (e.title, orjson.dumps(list(e.tags)).decode(), e.language, e.visibility,
                e.version, us(e.occurred_at), aid))
    _version(db, t, e, aid, e.version)


def _published(db: Db, t: Names, e: k.Article.Published) -> None:
    aid = record_id(e.originator_id, "article")
    row = db.one(f"SELECT title, body, tags, visibility FROM {t.version} "
                 "WHERE article_id=? AND version=?", (aid, e.version))
    if row is None:
        return
    public = 1 if row[3] == "public" else 0
    db.execute(f"UPDATE {t.article} SET status='published', published_version=?, public=?, "
               "updated_us=? WHERE article_id=?", (e.version, public, us(e.occurred_at), aid))
    _index(db, t, aid, "published", row[0], row[1], orjson.loads(row[2]))


def _retired(db: Db, t: Names, e: k.Article.Retired) -> None:
    aid = record_id(e.originator_id, "article")
    db.execute(f"UPDATE {t.article} SET status='retired', public=0, updated_us=? "
               "WHERE article_id=?", (us(e.occurred_at), aid))
    db.execute(f"DELETE FROM {t.search} WHERE article_id=?", (aid,))


def _viewed(db: Db, t: Names, e: k.ArticleViews.Viewed) -> None:
    db.execute(f"INSERT INTO {t.view} (view_id, article_id, viewed_us) VALUES (?,?,?) "
               "ON CONFLICT (view_id) DO NOTHING", (e.view_id, e.article_id, us(e.occurred_at)))


def _linked(db: Db, t: Names, e: k.CaseArticleLinked) -> None:
    db.execute(f"INSERT INTO {t.link} ({', '.join(_LINK)}) VALUES (?,?,?,?,?,?,?) "
               "ON CONFLICT (case_id, article_id, relation) DO NOTHING",
               (e.case_id, e.article_id, e.relation, customer_id(e), e.view_id,
                us(e.occurred_at), str(e.event_id)))


def _index(db: Db, t: Names, aid: str, scope: str, title: str, body: str,
           tags: Sequence[str]) -> None:
    db.execute(f"DELETE FROM {t.search} WHERE article_id=? AND scope=?", (aid, scope))
    words = " ".join(tags)
    if db.dialect == "postgres":
        db.execute(f"INSERT INTO {t.search} (article_id, scope, title, doc) VALUES (?,?,?, "
                   "setweight(to_tsvector('simple', ?), 'A') || "
                   "setweight(to_tsvector('simple', ?), 'A') || "
                   "setweight(to_tsvector('simple', ?), 'C'))",
                   (aid, scope, title, title, words, body))
    else:
        db.execute(f"INSERT INTO {t.search} (article_id, scope, title, body, tags) "
                   "VALUES (?,?,?,?,?)", (aid, scope, title, body, words))


_HANDLERS: dict[type, Any] = {
    k.Article.Created: _created,
    k.Article.Revised: _revised,
    k.Article.Published: _published,
    k.Article.Retired: _retired,
    k.ArticleViews.Viewed: _viewed,
    k.CaseArticleLinked: _linked,
}
