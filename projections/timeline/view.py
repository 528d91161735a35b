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

from projections.customers import Resolved, group, resolve
from projections.engine import Names
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
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = Cursor(rows[-1][6], rows[-1][0], as_of).encode() if more else None
        return TimelinePage([_entry(r) for r in rows], next_cursor, as_of)

    @staticmethod
    def _conditions(db: Db, t: Names, cursor: Cursor | None, where: TimelineFilter,
                    as_of: int) -> tuple[str, list[Any]]:
        parts = ["AND position<=?"]
        params: list[Any] = [as_of]
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
