"""Reading the timeline: keyset pages, newest first, over a customer and everyone merged in.

Order is (occurred_at, position) descending — a total order, since positions
are unique. A page's cursor carries the last row's key and the ``as_of``
position of the first page, so later pages show exactly the rows that
existed when paging began: events appended meanwhile never shift a page (no
duplicate) and never push an older row out of reach (no gap).
"""

from __future__ import annotations

import base64
import heapq
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import orjson

from projections.customers import MAX_HOPS, Resolved, group, resolve
from projections.engine import TRACKING, Names
from projections.events import moment
from projections.store import Db
from projections.timeline.projection import ENTRY_COLUMNS, TimelineProjection
from projections.views import LiveView

MAX_PAGE = 200
MAX_TERMS = 8
_WORD = re.compile(r"\w+", re.UNICODE)


class InvalidQueryError(ValueError):
    """Raised when a cursor or search text cannot be used."""


class TimelineEntry(TypedDict):
    position: int
    customer_id: str
    event_id: str
    kind: str
    channel: str
    direction: str
    occurred_at: datetime  # orjson writes ISO 8601 (in C: 10x cheaper than isoformat here)
    recorded_at: datetime
    actor: str | None
    subject: str | None
    summary: str | None
    internal: bool
    has_body: bool
    voided: bool
    corrected: bool


@dataclass(frozen=True)
class Cursor:
    occurred_us: int
    position: int
    as_of: int

    def encode(self) -> str:
        raw = f"{self.occurred_us}.{self.position}.{self.as_of}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            o, p, a = (int(x) for x in raw.split("."))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidQueryError("cursor is not one this API returned") from exc
        return cls(o, p, a)


@dataclass(frozen=True)
class TimelineFilter:
    channels: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    since_us: int | None = None  # occurred_at >= since
    until_us: int | None = None  # occurred_at < until
    text: str | None = None
    include_internal: bool = True


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineEntry]
    next_cursor: str | None
    as_of: int


@dataclass(frozen=True)
class EventDetail:
    entry: TimelineEntry
    data: dict[str, Any]


def search_terms(text: str) -> list[str]:
    terms = _WORD.findall(text.lower())[:MAX_TERMS]
    if not terms:
        raise InvalidQueryError("search text needs at least one letter or digit")
    return terms


def _entry(row: Sequence[Any]) -> TimelineEntry:
    return {
        "position": row[0], "customer_id": row[1], "event_id": row[2], "kind": row[3],
        "channel": row[4], "direction": row[5], "occurred_at": moment(row[6]),
        "recorded_at": moment(row[7]), "actor": row[8], "subject": row[9],
        "summary": row[10], "internal": bool(row[11]), "has_body": bool(row[12]),
        "voided": bool(row[13]), "corrected": bool(row[14]),
    }


class TimelineView(LiveView):
    """The timeline read model (SQLite or PostgreSQL; the SQL differs only in search)."""

    projection = TimelineProjection()

    def resolve(self, customer_id: str) -> Resolved | None:
        return self.run(lambda db, t: resolve(db, t.customer, customer_id))

    def page(self, root: str, *, limit: int = 50, cursor: Cursor | None = None,
             where: TimelineFilter | None = None) -> TimelinePage:
        limit = max(1, min(limit, MAX_PAGE))
        where = where or TimelineFilter()
        as_of = cursor.as_of if cursor else self.position()
        return self.run(lambda db, t: self._page(db, t, root, limit, cursor, where, as_of))

    def resolved_page(self, asked: str, *, limit: int = 50, cursor: Cursor | None = None,
                      where: TimelineFilter | None = None
                      ) -> tuple[Resolved, TimelinePage] | None:
        """``resolve(asked)`` then ``page`` of its root, as the API route asks them; None
        when the customer is unknown. On PostgreSQL one statement (one round trip instead
        of four: position, resolve, group, page — each a wait for a server process on a
        loaded machine); on SQLite, in process, the two calls as they are."""
        limit = max(1, min(limit, MAX_PAGE))
        where = where or TimelineFilter()
        if self.store.dialect == "sqlite":
            found = self.resolve(asked)
            if found is None:
                return None
            return found, self.page(found.root, limit=limit, cursor=cursor, where=where)
        return self.run(lambda db, t: self._resolved_page(db, t, asked, limit, cursor, where))

    def _resolved_page(self, db: Db, t: Names, asked: str, limit: int, cursor: Cursor | None,
                       where: TimelineFilter) -> tuple[Resolved, TimelinePage] | None:
        # The same rules as resolve() (at most MAX_HOPS rows up the merge chain) and
        # group() (at most MAX_HOPS levels down); each member's rows come from its own
        # index range (LATERAL ... LIMIT), merged by the outer ORDER BY, as _page does.
        sql, params = self._filters(db, t, cursor, where)
        cols = ",".join(ENTRY_COLUMNS)
        statement = (
            "WITH RECURSIVE up(cid, next, partner_id, hops) AS ("
            f"SELECT customer_id, merged_into, partner_id, 1 FROM {t.customer} "
            "WHERE customer_id=? UNION ALL "
            "SELECT c.customer_id, c.merged_into, c.partner_id, up.hops+1 "
            f"FROM {t.customer} c JOIN up ON c.customer_id=up.next WHERE up.hops<?), "
            "root AS (SELECT cid, partner_id FROM up WHERE next IS NULL LIMIT 1), "
            "grp(cid, depth) AS (SELECT cid, 0 FROM root UNION "
            f"SELECT c.customer_id, grp.depth+1 FROM {t.customer} c "
            "JOIN grp ON c.merged_into=grp.cid WHERE grp.depth<?), "
            "a AS (SELECT COALESCE(CAST(? AS BIGINT), "
            f"(SELECT position FROM {TRACKING} WHERE name=? AND live=1), 0) AS as_of) "
            f"SELECT root.cid, root.partner_id, a.as_of, e.* FROM root CROSS JOIN a "
            "LEFT JOIN LATERAL (SELECT x.* FROM (SELECT DISTINCT cid FROM grp) g "
            f"CROSS JOIN LATERAL (SELECT {cols} FROM {t.entry} "
            f"WHERE customer_id=g.cid AND position<=a.as_of {sql} "
            "ORDER BY occurred_us DESC, position DESC LIMIT ?) x "
            "ORDER BY x.occurred_us DESC, x.position DESC LIMIT ?) e ON true "
            "ORDER BY e.occurred_us DESC, e.position DESC")
        rows = db.all(statement, (asked, MAX_HOPS, MAX_HOPS, cursor.as_of if cursor else None,
                                  self.projection.name, *params, limit + 1, limit + 1))
        if not rows:
            return None
        root, partner_id, as_of = rows[0][0], rows[0][1], int(rows[0][2])
        entries = [r[3:] for r in rows if r[3] is not None]
        return Resolved(asked, root, partner_id), self._finish(entries, limit, as_of)

    def _page(self, db: Db, t: Names, root: str, limit: int, cursor: Cursor | None,
              where: TimelineFilter, as_of: int) -> TimelinePage:
        sql, params = self._conditions(db, t, cursor, where, as_of)
        statement = (f"SELECT {','.join(ENTRY_COLUMNS)} FROM {t.entry} WHERE customer_id=? "
                     f"{sql} ORDER BY occurred_us DESC, position DESC LIMIT ?")
        members = group(db, t.customer, root)
        if len(members) == 1:
            rows = db.all(statement, (root, *params, limit + 1))
        else:
            runs = [db.all(statement, (m, *params, limit + 1)) for m in members]
            merged = heapq.merge(*runs, key=lambda r: (r[6], r[0]), reverse=True)
            rows = [r for _, r in zip(range(limit + 1), merged, strict=False)]
        return self._finish(rows, limit, as_of)

    @staticmethod
    def _finish(rows: Sequence[Sequence[Any]], limit: int, as_of: int) -> TimelinePage:
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1][6], rows[-1][0], as_of).encode() if more else None
        return TimelinePage([_entry(r) for r in rows], next_cursor, as_of)

    @staticmethod
    def _conditions(db: Db, t: Names, cursor: Cursor | None, where: TimelineFilter,
                    as_of: int) -> tuple[str, list[Any]]:
        sql, params = TimelineView._filters(db, t, cursor, where)
        return f"AND position<=? {sql}", [as_of, *params]

    @staticmethod
    def _filters(db: Db, t: Names, cursor: Cursor | None,
                 where: TimelineFilter) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if cursor is not None:
            parts.append("AND (occurred_us, position) < (?, ?)")
            params += [cursor.occurred_us, cursor.position]
        for column, values in (("channel", where.channels), ("direction", where.directions),
                               ("kind", where.kinds)):
            if values:
                parts.append(f"AND {column} IN ({','.join('?' * len(values))})")
                params += list(values)
        if where.since_us is not None:
            parts.append("AND occurred_us>=?")
            params.append(where.since_us)
        if where.until_us is not None:
            parts.append("AND occurred_us<?")
            params.append(where.until_us)
        if not where.include_internal:
            parts.append("AND internal=0")
        if where.text:
            terms = search_terms(where.text)
            if db.dialect == "sqlite":
                parts.append(f"AND position IN (SELECT rowid FROM {t.fts} WHERE {t.fts} MATCH ?)")
                params.append(" ".join(f'"{w}"*' for w in terms))
            else:
                parts.append("AND search @@ to_tsquery('simple', ?)")
                params.append(" & ".join(f"{w}:*" for w in terms))
        return " ".join(parts), params

    def detail(self, event_id: str) -> EventDetail | None:
        def query(db: Db, t: Names) -> EventDetail | None:
            cols = ",".join(f"e.{c}" for c in ENTRY_COLUMNS)
            row = db.one(f"SELECT {cols}, d.body FROM {t.detail} d JOIN {t.entry} e "
                         "ON e.position=d.position WHERE d.event_id=? ORDER BY d.position LIMIT 1",
                         (event_id,))
            if row is None:
                return None
            return EventDetail(_entry(row), orjson.loads(row[-1]))
        return self.run(query)
