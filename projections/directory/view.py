"""Reading the directory: prefix search and exact lookups, both resolved through merges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypedDict

from projections.customers import Resolved, group, resolve
from projections.directory.projection import DirectoryProjection, norm_text
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.views import LiveView

MAX_RESULTS = 100
_CANDIDATES = 1000
_PHONEISH = re.compile(r"^[\d\s+().\-/]+$")
_TOP = "\U0010ffff"


class ContactPoint(TypedDict):
    kind: str
    value: str
    label: str | None


class DirectoryEntry(TypedDict):
    customer_id: str
    name: str
    company: str | None
    lifecycle_stage: str | None
    partner_id: str | None
    registered_at: str | None
    contact_points: list[ContactPoint]
    merged_from: list[str]


@dataclass(frozen=True)
class SearchPage:
    items: list[DirectoryEntry]
    more: bool
    incomplete: bool


def search_key(entry: DirectoryEntry) -> tuple[str, str]:
    """The order of search hits: name (case-folded), then id."""
    return entry["name"].casefold(), entry["customer_id"]


def query_prefix(text: str) -> str:
    """What a search text is matched as: digits for a number, else normalised text."""
    text = norm_text(text)
    if _PHONEISH.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 3:
            return digits
    return text


class DirectoryView(LiveView):
    projection = DirectoryProjection()

    def resolve(self, customer_id: str) -> Resolved | None:
        return self.run(lambda db, t: resolve(db, t.customer, customer_id))

    def search(self, text: str, *, limit: int = 20, partner_id: str | None = None,
               partner_only: bool = False) -> list[DirectoryEntry]:
        """Customers with a term starting with ``text``; roots only, sorted by name."""
        return self.search_page(text, limit=limit, partner_id=partner_id,
                                partner_only=partner_only).items

    def search_page(self, text: str, *, limit: int = 20, after: tuple[str, str] | None = None,
                    partner_id: str | None = None, partner_only: bool = False) -> SearchPage:
        """One page of ``search``, after the hit whose ``search_key`` is ``after``.

        ``more`` says a next page exists; ``incomplete`` that more than ``_CANDIDATES``
        index terms matched, so hits past them are missing (the query should be refined).
        """
        prefix = query_prefix(text)
        limit = max(1, min(limit, MAX_RESULTS))
        if not prefix:
            return SearchPage([], False, False)

        def query(db: Db, t: Names) -> SearchPage:
            ids = db.all(f"SELECT DISTINCT customer_id FROM {t.term} WHERE term>=? AND term<? "
                         "LIMIT ?", (prefix, prefix + _TOP, _CANDIDATES + 1))
            incomplete = len(ids) > _CANDIDATES
            roots = self._roots(db, t, [r[0] for r in ids[:_CANDIDATES]], partner_id,
                                partner_only)
            entries = self._entries(db, t, roots)
            entries.sort(key=search_key)
            if after is not None:
                entries = [e for e in entries if search_key(e) > after]
            return SearchPage(entries[:limit], len(entries) > limit, incomplete)

        return self.run(query)

    def lookup(self, kinds: tuple[str, ...], value: str, *, partner_id: str | None = None,
               partner_only: bool = False) -> list[DirectoryEntry]:
        """Customers owning the normalised contact point (following merges)."""
        def query(db: Db, t: Names) -> list[DirectoryEntry]:
            marks = ",".join("?" * len(kinds))
            ids = db.all(f"SELECT customer_id FROM {t.contact} WHERE kind IN ({marks}) "
                         "AND value=? ORDER BY customer_id", (*kinds, value))
            roots = self._roots(db, t, [r[0] for r in ids], partner_id, partner_only)
            return self._entries(db, t, roots)

        return self.run(query)

    def entry(self, customer_id: str) -> DirectoryEntry | None:
        found = self.run(lambda db, t: self._entries(db, t, [customer_id]))
        return found[0] if found else None

    @staticmethod
    def _roots(db: Db, t: Names, ids: list[str], partner_id: str | None,
               partner_only: bool) -> list[str]:
        roots: list[str] = []
        for cid in ids:
            found = resolve(db, t.customer, cid)
            if found is None or found.root in roots:
                continue
            if partner_only and found.partner_id != partner_id:
                continue
            roots.append(found.root)
        return roots

    @staticmethod
    def _entries(db: Db, t: Names, roots: list[str]) -> list[DirectoryEntry]:
        out: list[DirectoryEntry] = []
        for root in roots:
            row = db.one(f"SELECT customer_id, name, company, lifecycle_stage, partner_id, "
                         f"registered_us FROM {t.customer} WHERE customer_id=?", (root,))
            if row is None:
                continue
            merged = sorted(group(db, t.customer, root)[1:])
            contacts: list[Any] = db.all(
                f"SELECT kind, value, label FROM {t.contact} WHERE customer_id IN "
                f"({','.join('?' * (1 + len(merged)))}) ORDER BY kind, value",
                (root, *merged))
            out.append({
                "customer_id": row[0], "name": row[1], "company": row[2],
                "lifecycle_stage": row[3], "partner_id": row[4], "registered_at": iso(row[5]),
                "contact_points": [{"kind": k, "value": v, "label": lb} for k, v, lb in contacts],
                "merged_from": merged,
            })
        return out
