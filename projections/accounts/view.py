"""Reading accounts: the directory, one account with its hierarchy and contacts, and the
account timeline.

The account timeline pages like a customer's timeline (``projections.timeline.view``:
the same ``Cursor``, ``TimelineFilter``, keyset conditions and entry shape):
newest first by (occurred_at, position), cursors pinned to the ``as_of``
position of the first page. A page is one index range over the account's
``entry`` rows; the texts (subject, summary, voided, corrected…) of a
contact's rows come from the timeline read model in a second query by
position, and ``as_of`` is the lower of the two read models' positions so
every row of the page is there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from projections.accounts.projection import ACCOUNT_COLUMNS, ENTRY_COLUMNS, AccountsProjection
from projections.engine import Names
from projections.events import moment
from projections.store import Db
from projections.timeline.projection import ENTRY_COLUMNS as TIMELINE_COLUMNS
from projections.timeline.view import (
    MAX_PAGE,
    Cursor,
    TimelineFilter,
    TimelinePage,
    TimelineView,
    search_terms,
)
from projections.timeline.view import _entry as timeline_entry
from projections.views import LiveView

MAX_DIRECTORY_PAGE = 200


@dataclass(frozen=True)
class AccountRef:
    account_id: str
    partner_id: str | None


def _account(row: Sequence[Any]) -> dict[str, Any]:
    found = dict(zip(ACCOUNT_COLUMNS, row, strict=True))
    found["addresses"] = orjson.loads(found["addresses"])
    found["opened_at"] = moment(found.pop("opened_us"))
    found.pop("position")
    return found


def _link(row: Sequence[Any]) -> dict[str, Any]:
    return {"link_id": row[0], "account_id": row[1], "customer_id": row[2], "role": row[3],
            "joined_at": moment(row[4]), "left_at": None if row[5] is None else moment(row[5])}


class AccountsView(LiveView):
    """The accounts read model (SQLite or PostgreSQL)."""

    projection = AccountsProjection()

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.timeline = TimelineView(store)

    def resolve(self, account_id: str) -> AccountRef | None:
        row = self.run(lambda db, t: db.one(
            f"SELECT account_id, partner_id FROM {t.account} WHERE account_id=?", (account_id,)))
        return None if row is None else AccountRef(row[0], row[1])

    def directory(self, *, limit: int = 50, after: tuple[str, str] | None = None,
                  partner_id: str | None = None, owner: str | None = None,
                  parent_id: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Accounts by name; (page, more)."""
        limit = max(1, min(limit, MAX_DIRECTORY_PAGE))

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], bool]:
            sql, params = [], []  # type: ignore[var-annotated]
            for column, value in (("partner_id", partner_id), ("owner", owner),
                                  ("parent_id", parent_id)):
                if value is not None:
                    sql.append(f"{column}=?")
                    params.append(value)
            if after is not None:
                sql.append("(name, account_id) > (?, ?)")
                params += list(after)
            where = f"WHERE {' AND '.join(sql)}" if sql else ""
            rows = db.all(f"SELECT {','.join(ACCOUNT_COLUMNS)} FROM {t.account} {where} "
                          "ORDER BY name, account_id LIMIT ?", (*params, limit + 1))
            return [_account(r) for r in rows[:limit]], len(rows) > limit
        return self.run(query)

    def detail(self, account_id: str) -> dict[str, Any] | None:
        """The account, its ancestors (parent first), children and every contact period."""
        def query(db: Db, t: Names) -> dict[str, Any] | None:
            cols = ",".join(ACCOUNT_COLUMNS)
            row = db.one(f"SELECT {cols} FROM {t.account} WHERE account_id=?", (account_id,))
            if row is None:
                return None
            found = _account(row)
            ancestors: list[dict[str, Any]] = []
            parent = found["parent_id"]
            while parent is not None and len(ancestors) < 16:
                up = db.one(f"SELECT account_id, name, parent_id FROM {t.account} "
                            "WHERE account_id=?", (parent,))
                if up is None:
                    break
                ancestors.append({"account_id": up[0], "name": up[1]})
                parent = up[2]
            children = db.all(f"SELECT account_id, name FROM {t.account} WHERE parent_id=? "
                              "ORDER BY name, account_id", (account_id,))
            links = db.all(f"SELECT link_id, account_id, customer_id, role, joined_us, left_us "
                           f"FROM {t.link} WHERE account_id=? ORDER BY joined_us, link_id",
                           (account_id,))
            found["ancestors"] = ancestors
            found["children"] = [{"account_id": c[0], "name": c[1]} for c in children]
            found["contacts"] = [_link(r) for r in links]
            return found
        return self.run(query)

    def links_of(self, customer_id: str) -> list[dict[str, Any]]:
        """Every period of one person on any account, oldest first."""
        return self.run(lambda db, t: [_link(r) for r in db.all(
            f"SELECT link_id, account_id, customer_id, role, joined_us, left_us FROM {t.link} "
            "WHERE customer_id=? ORDER BY joined_us, link_id", (customer_id,))])

    # -- the account timeline ------------------------------------------------
    def page(self, account_id: str, *, limit: int = 50, cursor: Cursor | None = None,
             where: TimelineFilter | None = None) -> TimelinePage:
        limit = max(1, min(limit, MAX_PAGE))
        where = where or TimelineFilter()
        as_of = cursor.as_of if cursor else min(self.position(), self.timeline.position())
        rows = self.run(lambda db, t: self._rows(db, t, account_id, limit, cursor, where, as_of))
        more = len(rows) > limit
        rows = rows[:limit]
        texts = self._texts([r[1] for r in rows if r[2] is not None])
        items = [texts.get(r[1]) or _own_entry(r) for r in rows]
        next_cursor = Cursor(rows[-1][7], rows[-1][1], as_of).encode() if more else None
        return TimelinePage(items, next_cursor, as_of)  # type: ignore[arg-type]

    def _rows(self, db: Db, t: Names, account_id: str, limit: int, cursor: Cursor | None,
              where: TimelineFilter, as_of: int) -> list[Any]:
        sql, params = TimelineView._conditions(db, t, cursor, replace(where, text=None), as_of)
        if where.text:
            terms = search_terms(where.text)
            tl = self.timeline._live_names(db)
            if db.dialect == "sqlite":
                sql += f" AND position IN (SELECT rowid FROM {tl.fts} WHERE {tl.fts} MATCH ?)"
                params.append(" ".join(f'"{w}"*' for w in terms))
            else:
                sql += (f" AND position IN (SELECT position FROM {tl.entry} "
                        "WHERE search @@ to_tsquery('simple', ?))")
                params.append(" & ".join(f"{w}:*" for w in terms))
        return db.all(f"SELECT {','.join(ENTRY_COLUMNS)} FROM {t.entry} WHERE account_id=? "
                      f"{sql} ORDER BY occurred_us DESC, position DESC LIMIT ?",
                      (account_id, *params, limit + 1))

    def _texts(self, positions: list[int]) -> dict[int, Any]:
        if not positions:
            return {}
        marks = ",".join("?" * len(positions))
        rows = self.timeline.run(lambda db, t: db.all(
            f"SELECT {','.join(TIMELINE_COLUMNS)} FROM {t.entry} WHERE position IN ({marks})",
            positions))
        return {r[0]: timeline_entry(r) for r in rows}


def _own_entry(row: Sequence[Any]) -> dict[str, Any]:
    """An account's own event (or, should the timeline lag, a contact's row without text)."""
    r = dict(zip(ENTRY_COLUMNS, row, strict=True))
    return {"position": r["position"], "customer_id": r["customer_id"],
            "event_id": r["event_id"], "kind": r["kind"], "channel": r["channel"],
            "direction": r["direction"], "occurred_at": moment(r["occurred_us"]),
            "recorded_at": moment(r["recorded_us"]), "actor": r["actor"],
            "subject": r["subject"], "summary": r["summary"], "internal": bool(r["internal"]),
            "has_body": False, "voided": False, "corrected": False}
