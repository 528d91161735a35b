"""Reading the knowledge base: search (FTS5 / tsvector), one article with its versions,
the cases linked to it, and the deflection figure for an as-of time."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypedDict

import orjson

from projections.engine import Names
from projections.events import iso, us
from projections.knowledge.projection import KnowledgeProjection
from projections.store import Db
from projections.views import LiveView

MAX_RESULTS = 100
_WORDS = re.compile(r"\w+", re.UNICODE)
_DAY_US = 86_400_000_000


class ArticleSummary(TypedDict):
    article_id: str
    title: str
    tags: list[str]
    language: str
    visibility: str
    status: str
    version: int
    published_version: int | None
    updated_at: str | None


class ArticleVersion(TypedDict):
    version: int
    title: str
    body: str
    tags: list[str]
    language: str
    visibility: str
    actor: str
    event_id: str
    at: str | None


def query_words(text: str) -> list[str]:
    """The words of a search text (each matched as a prefix; all must match)."""
    return [w for w in _WORDS.findall(text.casefold()) if w][:20]


def _summary(row: Any) -> ArticleSummary:
    return {"article_id": row[0], "title": row[1], "tags": orjson.loads(row[2]),
            "language": row[3], "visibility": row[4], "status": row[5], "version": row[6],
            "published_version": row[7], "updated_at": iso(row[8])}


def _version(row: Any) -> ArticleVersion:
    return {"version": row[0], "title": row[1], "body": row[2], "tags": orjson.loads(row[3]),
            "language": row[4], "visibility": row[5], "actor": row[6], "event_id": row[7],
            "at": iso(row[8])}


_COLS = ("a.article_id, a.title, a.tags, a.language, a.visibility, a.status, a.version, "
         "a.published_version, a.updated_us")
_VCOLS = "version, title, body, tags, language, visibility, actor, event_id, at_us"


class KnowledgeView(LiveView):
    projection = KnowledgeProjection()

    def search(self, text: str = "", *, public: bool, language: str | None = None,
               tag: str | None = None, limit: int = 20) -> list[ArticleSummary]:
        """Articles matching every word of ``text`` (as prefixes), best first; no text: all,
        newest first. ``public``: only published public articles, matched on their published
        version; else every article that is not retired, on its current version."""
        limit = max(1, min(limit, MAX_RESULTS))
        words = query_words(text)
        scope = "published" if public else "current"
        where = ["a.public=1" if public else "a.status<>'retired'"]
        params: list[Any] = []
        if language:
            where.append("a.language=?")
            params.append(language)
        if tag:
            where.append("EXISTS (SELECT 1 FROM {tag} g WHERE g.article_id=a.article_id "
                         "AND g.tag=?)")
            params.append(tag.casefold())

        def query(db: Db, t: Names) -> list[ArticleSummary]:
            cond = " AND ".join(where).format_map(t)
            if not words:
                rows = db.all(f"SELECT {_COLS} FROM {t.article} a WHERE {cond} "
                              "ORDER BY a.updated_us DESC, a.article_id LIMIT ?",
                              (*params, limit))
            elif db.dialect == "postgres":
                tsq = " & ".join(f"{w}:*" for w in words)
                rows = db.all(
                    f"SELECT {_COLS} FROM {t.search} s JOIN {t.article} a "
                    "ON a.article_id=s.article_id WHERE s.scope=? AND "
                    f"s.doc @@ to_tsquery('simple', ?) AND {cond} "
                    "ORDER BY ts_rank(s.doc, to_tsquery('simple', ?)) DESC, a.article_id "
                    "LIMIT ?", (scope, tsq, *params, tsq, limit))
            else:
                match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
                rows = db.all(
                    f"SELECT {_COLS} FROM {t.search} s JOIN {t.article} a "
                    f"ON a.article_id=s.article_id WHERE {t.search} MATCH ? AND s.scope=? "
                    f"AND {cond} ORDER BY bm25({t.search}, 0, 0, 10.0, 1.0, 5.0), a.article_id "
                    "LIMIT ?", (match, scope, *params, limit))
            return [_summary(r) for r in rows]

        return self.run(query)

    def article(self, article_id: str, *, public: bool) -> dict[str, Any] | None:
        """One article: its summary, the version to show (the published one for the public,
        the current one for staff), and for staff every version and the linked cases."""
        def query(db: Db, t: Names) -> dict[str, Any] | None:
            row = db.one(f"SELECT {_COLS} FROM {t.article} a WHERE a.article_id=?",
                         (article_id,))
            if row is None or (public and not db.scalar(
                    f"SELECT public FROM {t.article} WHERE article_id=?", (article_id,))):
                return None
            summary = _summary(row)
            shown = summary["published_version"] if public else summary["version"]
            v = db.one(f"SELECT {_VCOLS} FROM {t.version} WHERE article_id=? AND version=?",
                       (article_id, shown))
            found: dict[str, Any] = {**summary, "shown": _version(v) if v else None}
            if not public:
                found["versions"] = [_version(r) for r in db.all(
                    f"SELECT {_VCOLS} FROM {t.version} WHERE article_id=? ORDER BY version",
                    (article_id,))]
                found["cases"] = [
                    {"case_id": r[0], "customer_id": r[1], "relation": r[2], "at": iso(r[3]),
                     "event_id": r[4]}
                    for r in db.all(f"SELECT case_id, customer_id, relation, at_us, event_id "
                                    f"FROM {t.link} WHERE article_id=? ORDER BY at_us, case_id",
                                    (article_id,))]
            return found

        return self.run(query)

    def deflection(self, as_of: datetime, days: int,
                   since: datetime | None = None) -> dict[str, Any]:
        """Self-service views that did not lead to a case within ``days``.

        Counted: views up to ``as_of - days`` (and from ``since``), whose window has closed.
        A view *led to a case* when a case was opened through "still need help" from that
        very view (the case's ``asked-after`` link names it) within ``days``. Views still
        inside their window are reported as ``pending``, never as deflected."""
        end = us(as_of)
        matured = end - days * _DAY_US
        start = us(since) if since is not None else -(2 ** 62)

        def query(db: Db, t: Names) -> dict[str, Any]:
            led = (f"EXISTS (SELECT 1 FROM {t.link} l WHERE l.view_id=v.view_id AND "
                   "l.relation='asked-after' AND l.at_us>=v.viewed_us AND l.at_us<=v.viewed_us+?"
                   " AND l.at_us<=?)")
            rows = db.all(
                f"SELECT v.article_id, a.title, COUNT(*), "
                f"SUM(CASE WHEN {led} THEN 1 ELSE 0 END) FROM {t.view} v "
                f"JOIN {t.article} a ON a.article_id=v.article_id "
                "WHERE v.viewed_us>=? AND v.viewed_us<=? GROUP BY v.article_id, a.title "
                "ORDER BY v.article_id", (days * _DAY_US, end, start, matured))
            pending = db.scalar(f"SELECT COUNT(*) FROM {t.view} WHERE viewed_us>? AND "
                                "viewed_us<=? AND viewed_us>=?", (matured, end, start))
            resolved = dict(db.all(
                f"SELECT article_id, COUNT(*) FROM {t.link} WHERE relation='resolved' AND "
                "at_us<=? GROUP BY article_id", (end,)))
            items = [{"article_id": r[0], "title": r[1], "views": int(r[2]),
                      "led_to_case": int(r[3] or 0), "deflected": int(r[2]) - int(r[3] or 0),
                      "cases_resolved": int(resolved.get(r[0], 0))} for r in rows]
            views = sum(i["views"] for i in items)
            deflected = sum(i["deflected"] for i in items)
            return {"as_of": as_of.isoformat(), "days": days,
                    "since": since.isoformat() if since else None, "views": views,
                    "led_to_case": views - deflected, "deflected": deflected,
                    "rate": round(deflected / views, 4) if views else None,
                    "pending": int(pending or 0), "articles": items}

        return self.run(query)
