"""Duplicate suggestions, completeness and staleness, computed at read time from the
quality read model (the scores are a pure function of its rows and the query).

Duplicates. Candidate pairs come from *blocks* — customers sharing a canonical
email or number, or a company, or a postcode; accounts sharing a VAT number
or a postcode — never from all pairs. Each pair collects reasons, each with a
weight, and scores ``1 − Π(1 − w)`` (independent evidence; one strong reason
is enough, two weak ones add up):

==========================================================  =======================
same canonical email (``+tag`` dropped, Gmail dots dropped)  0.90
same number                                                  0.90
same VAT number (accounts)                                   0.95
similar names within the same company or postcode            0.9 × similarity
==========================================================  =======================

Name similarity is ``rapidfuzz.fuzz.token_sort_ratio`` / 100 over names
case-folded, stripped of accents and (accounts) of legal-form words (Ltd,
GmbH…); below 0.85 it is no reason at all. Pairs at or above the threshold
(default 0.8) are listed, best first; merged-away and erased customers and
pairs staff rejected or accepted are left out. Blocks larger than
``MAX_BLOCK`` are skipped for names (a postcode shared by a tower block says
little), and counted in the answer.

Completeness and staleness, per owner: customers with no usable contact point
(none, or every one proved unusable by a hard bounce or a failed call), with
no owner, not reached in ``months`` months before ``as_of`` (never reached
counts too), the unusable points themselves; accounts with no owner or no VAT
number; customers with no valid consent (of any channel and purpose) on
``as_of`` — validity is ``domain.marketing.consent_valid`` over the consent
events, and a merged-in duplicate's consent counts for its survivor.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any

from rapidfuzz import fuzz

from domain import marketing as mk
from projections.customers import MAX_HOPS
from projections.engine import Names
from projections.events import moment, us
from projections.quality.projection import QualityProjection
from projections.store import Db
from projections.views import LiveView

DEFAULT_THRESHOLD = 0.8
NAME_FLOOR = 0.85
MAX_BLOCK = 200
WEIGHTS = {"email": 0.9, "phone": 0.9, "vat": 0.95}
_LEGAL = {"ltd", "limited", "plc", "llp", "gmbh", "ag", "sa", "sarl", "bv", "nv", "inc",
          "llc", "corp", "co", "company", "the"}


@dataclass
class Suggestion:
    kind: str
    first_id: str
    second_id: str
    reasons: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        left = 1.0
        for w in self.weights:
            left *= 1.0 - w
        return round(1.0 - left, 4)

    def add(self, reason: str, weight: float) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            self.weights.append(weight)

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "first_id": self.first_id, "second_id": self.second_id,
                "score": self.score, "reasons": self.reasons}


def plain(text: str | None, *, legal: bool = False) -> str:
    """A name as compared: case-folded, no accents, no punctuation (no legal forms)."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c))
    words = [w for w in letters.split() if not (legal and w in _LEGAL)]
    return " ".join(words)


def similarity(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return float(fuzz.token_sort_ratio(a, b)) / 100.0


class QualityView(LiveView):
    """The data-quality read model."""

    projection = QualityProjection()

    def duplicates(self, *, kind: str | None = None, threshold: float = DEFAULT_THRESHOLD,
                   limit: int = 100) -> dict[str, Any]:
        def query(db: Db, t: Names) -> dict[str, Any]:
            found: dict[tuple[str, str, str], Suggestion] = {}
            skipped = 0
            if kind in (None, "customer"):
                skipped += _customers(db, t, found)
            if kind in (None, "account"):
                skipped += _accounts(db, t, found)
            decided = {tuple(r) for r in db.all(
                f"SELECT kind, first_id, second_id FROM {t.decision}")}
            pairs = [s for key, s in found.items()
                     if key not in decided and s.score >= threshold]
            pairs.sort(key=lambda s: (-s.score, s.kind, s.first_id, s.second_id))
            return {"threshold": threshold, "pairs": [s.public() for s in pairs[:limit]],
                    "more": len(pairs) > limit, "skipped_blocks": skipped}
        return self.run(query)

    def completeness(self, *, as_of: datetime, months: int = 12) -> dict[str, Any]:
        cutoff = us(as_of) - months * 30 * 24 * 3600 * 1_000_000  # a month: 30 days

        def query(db: Db, t: Names) -> dict[str, Any]:
            owners: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            bad = {(k, v) for k, v in db.all(f"SELECT kind, value FROM {t.invalid}")}
            points: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for cid, k, v in db.all(f"SELECT customer_id, kind, value FROM {t.point}"):
                points[cid].append((k, v))
            consenting, lapsed = _consent(db, t, as_of)
            consent = {"with_valid_consent": 0, "without_valid_consent": 0,
                       "withdrawn_or_expired": 0}
            for cid, owner, last in db.all(
                    f"SELECT customer_id, owner, last_touch_us FROM {t.customer} "
                    "WHERE merged_into IS NULL AND erased=0"):
                row = owners[owner or "(no owner)"]
                row["customers"] += 1
                if cid in consenting:
                    consent["with_valid_consent"] += 1
                else:
                    consent["without_valid_consent"] += 1
                    consent["withdrawn_or_expired"] += cid in lapsed
                    row["no_valid_consent"] += 1
                mine = points.get(cid, [])
                if not any((("phone" if k == "fax" else k), v) not in bad for k, v in mine):
                    row["no_usable_contact_point"] += 1
                if owner is None:
                    row["no_owner"] += 1
                if last is None or last < cutoff:
                    row["not_reached"] += 1
                row["unusable_contact_points"] += sum(
                    (("phone" if k == "fax" else k), v) in bad for k, v in mine)
            for owner, vat in db.all(f"SELECT owner, vat_number FROM {t.account}"):
                row = owners[owner or "(no owner)"]
                row["accounts"] += 1
                row["accounts_no_owner"] += owner is None
                row["accounts_no_vat"] += vat is None
            flagged = [{"customer_id": c, "kind": k, "reason": r, "occurred_at": moment(o)}
                       for c, k, r, o in db.all(
                           f"SELECT customer_id, kind, reason, occurred_us FROM {t.invalid} "
                           "ORDER BY occurred_us DESC, event_id LIMIT 100")]
            return {"as_of": as_of, "months": months, "consent": consent,
                    "owners": {o: dict(sorted(c.items())) for o, c in sorted(owners.items())},
                    "unusable": flagged}
        return self.run(query)


def _consent(db: Db, t: Names, as_of: datetime) -> tuple[set[str], set[str]]:
    """The (root) customers with a valid consent on ``as_of``, and those with consent
    records none of which is valid then (withdrawn, expired or lapsed)."""
    parent = dict(db.all(f"SELECT customer_id, merged_into FROM {t.customer} "
                         "WHERE merged_into IS NOT NULL"))
    valid: set[str] = set()
    recorded: set[str] = set()
    for cid, channel, purpose, state, expires in db.all(
            f"SELECT customer_id, consent_channel, purpose, state, expires_us FROM {t.consent}"):
        root, hops = cid, 0
        while root in parent and hops < MAX_HOPS:
            root, hops = parent[root], hops + 1
        recorded.add(root)
        area = {"consent": {mk.topic(channel, purpose): {
            "state": state, "expires_at": moment(expires).isoformat() if expires else None}}}
        if mk.consent_valid(area, channel, purpose, as_of):
            valid.add(root)
    return valid, recorded - valid


def _pairs(ids: Iterable[str]) -> Iterable[tuple[str, str]]:
    return combinations(sorted(set(ids)), 2)


def _customers(db: Db, t: Names, found: dict[tuple[str, str, str], Suggestion]) -> int:
    people = {r[0]: r[1:] for r in db.all(
        f"SELECT customer_id, name, company, postcode FROM {t.customer} "
        "WHERE merged_into IS NULL AND erased=0")}

    def get(a: str, b: str) -> Suggestion:
        return found.setdefault(("customer", a, b), Suggestion("customer", a, b))

    by_canon: dict[str, list[str]] = defaultdict(list)
    for cid, canon in db.all(f"SELECT customer_id, canon FROM {t.point}"):
        if cid in people:
            by_canon[canon].append(cid)
    for canon, ids in by_canon.items():
        what = "email" if canon.startswith("email:") else "phone"
        for a, b in _pairs(ids):
            get(a, b).add(f"same {what} ({'canonical' if what == 'email' else 'E.164'})",
                          WEIGHTS[what])
    blocks: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cid, (_, company, postcode) in people.items():
        if plain(company, legal=True):
            blocks[("company", plain(company, legal=True))].append(cid)
        if postcode:
            blocks[("postcode", postcode.upper().replace(" ", ""))].append(cid)
    skipped = 0
    for (by, _), ids in blocks.items():
        if len(ids) > MAX_BLOCK:
            skipped += 1
            continue
        for a, b in _pairs(ids):
            sim = similarity(plain(people[a][0]), plain(people[b][0]))
            if sim >= NAME_FLOOR:
                get(a, b).add(f"names {round(sim * 100)}% alike within the same {by}",
                              round(0.9 * sim, 4))
    return skipped


def _accounts(db: Db, t: Names, found: dict[tuple[str, str, str], Suggestion]) -> int:
    rows = {r[0]: r[1:] for r in db.all(
        f"SELECT account_id, name, vat_number, postcode FROM {t.account}")}

    def get(a: str, b: str) -> Suggestion:
        return found.setdefault(("account", a, b), Suggestion("account", a, b))

    by_vat: dict[str, list[str]] = defaultdict(list)
    by_postcode: dict[str, list[str]] = defaultdict(list)
    for aid, (_, vat, postcode) in rows.items():
        if vat:
            by_vat[vat].append(aid)
        if postcode:
            by_postcode[postcode.upper().replace(" ", "")].append(aid)
    for ids in by_vat.values():
        for a, b in _pairs(ids):
            get(a, b).add("same VAT number", WEIGHTS["vat"])
    skipped = 0
    for ids in by_postcode.values():
        if len(ids) > MAX_BLOCK:
            skipped += 1
            continue
        for a, b in _pairs(ids):
            sim = similarity(plain(rows[a][0], legal=True), plain(rows[b][0], legal=True))
            if sim >= NAME_FLOOR:
                get(a, b).add(f"names {round(sim * 100)}% alike within the same postcode",
                              round(0.9 * sim, 4))
    return skipped
