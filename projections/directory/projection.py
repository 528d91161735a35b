"""The directory read model: who is who, found by name, company, email or number.

Search works on *terms*: lower-cased names and companies (whole and per word),
email addresses (whole, local part, domain) and numbers (E.164 digits and
national digits). A query is a prefix of some term, served by an index range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers

from domain.customer import Customer
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import ERASED_NAME, Item, customer_id, is_erased, us
from projections.store import Db

_SPACE = re.compile(r"\s+")
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)


def norm_text(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()


def text_terms(text: str | None) -> set[str]:
    if not text:
        return set()
    whole = norm_text(text)
    return {whole, *_WORDS.findall(whole)} - {""}


def number_terms(e164: str) -> set[str]:
    terms = {e164.lstrip("+")}
    try:
        parsed = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        digits = re.sub(r"\D", "", national)
        if digits:
            terms.add(digits)
    except phonenumbers.NumberParseException:
        pass
    return terms


def contact_terms(kind: str, value: str) -> set[str]:
    if kind == "email":
        local, _, domain = value.casefold().partition("@")
        return {value.casefold(), local, domain} - {""}
    return number_terms(value)


class DirectoryProjection(Projection):
    name = "directory"
    touches = (*IDENTITY_EVENTS, Customer.PersonalDataErased, Customer.ProfileChanged,
               Customer.ContactPointAdded, Customer.ContactPointRemoved,
               Customer.LifecycleStageChanged)
    tables = (
        Table("customer", ("customer_id",),
              ("customer_id", "name", "company", "lifecycle_stage", "partner_id", "merged_into",
               "registered_us")),
        Table("contact", ("kind", "value", "customer_id"),
              ("kind", "value", "customer_id", "label")),
        Table("term", ("term", "customer_id"), ("term", "customer_id")),
    )

    def ddl(self, dialect: str) -> list[str]:
        collate = ' COLLATE "C"' if dialect == "postgres" else ""
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "company TEXT, lifecycle_stage TEXT, partner_id TEXT, merged_into TEXT, "
            "registered_us BIGINT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {contact} (kind TEXT NOT NULL, value TEXT NOT NULL, "
            "customer_id TEXT NOT NULL, label TEXT, PRIMARY KEY (kind, value, customer_id))"),
            "CREATE INDEX {contact}_customer ON {contact} (customer_id)",
            (f"CREATE TABLE {{term}} (term TEXT{collate} NOT NULL, customer_id TEXT NOT NULL, "
            "PRIMARY KEY (term, customer_id))"),
            "CREATE INDEX {term}_customer ON {term} (customer_id)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # Terms follow only from a customer's name, company and contact points, and are
        # replaced whole: each customer whose terms may change is reindexed once, after
        # the batch's rows, all of them in a few statements (a reindex per event was
        # four statements each: round trips on PostgreSQL, most of this model's time).
        changed: dict[str, None] = {}  # insertion-ordered set
        for _, e in items:
            cid = customer_id(e)
            if isinstance(e, Customer.Registered):
                erased = is_erased(e)
                apply_identity(db, t.customer, e, name=ERASED_NAME if erased else e.name,
                               company=None if erased else e.company,
                               lifecycle_stage=e.lifecycle_stage, registered_us=us(e.occurred_at))
                changed[cid] = None
            elif apply_identity(db, t.customer, e):
                continue
            elif isinstance(e, Customer.PersonalDataErased):
                db.execute(f"UPDATE {t.customer} SET name=?, company=NULL WHERE customer_id=?",
                           (ERASED_NAME, cid))
                db.execute(f"DELETE FROM {t.contact} WHERE customer_id=?", (cid,))
                changed[cid] = None
            elif is_erased(e) and isinstance(e, Customer.ProfileChanged | Customer.ContactPointAdded
                                             | Customer.ContactPointRemoved):
                continue  # nothing personal is left to index
            elif isinstance(e, Customer.ProfileChanged):
                changes = e.changes
                if changes.get("name") is not None:
                    db.execute(f"UPDATE {t.customer} SET name=? WHERE customer_id=?",
                               (changes["name"], cid))
                if "company" in changes:
                    db.execute(f"UPDATE {t.customer} SET company=? WHERE customer_id=?",
                               (changes["company"], cid))
                if "name" in changes or "company" in changes:
                    changed[cid] = None
            elif isinstance(e, Customer.ContactPointAdded):
                db.execute(f"INSERT INTO {t.contact} (kind, value, customer_id, label) "
                           "VALUES (?,?,?,?) ON CONFLICT (kind, value, customer_id) DO NOTHING",
                           (e.kind, e.value, cid, e.label))
                changed[cid] = None
            elif isinstance(e, Customer.ContactPointRemoved):
                db.execute(f"DELETE FROM {t.contact} WHERE kind=? AND value=? AND customer_id=?",
                           (e.kind, e.value, cid))
                changed[cid] = None
            elif isinstance(e, Customer.LifecycleStageChanged):
                db.execute(f"UPDATE {t.customer} SET lifecycle_stage=? WHERE customer_id=?",
                           (e.to_stage, cid))
        _reindex(db, t, list(changed))


#: Customers reindexed per statement (SQLite allows 32,766 parameters; PostgreSQL 65,535).
_REINDEX_CHUNK = 500


def _reindex(db: Db, t: Names, customers: Sequence[str]) -> None:
    """Replace these customers' terms with those of their rows and contact points as they
    stand; an erased customer is found by id only (no terms), one without a row is left."""
    for start in range(0, len(customers), _REINDEX_CHUNK):
        chunk = customers[start:start + _REINDEX_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = {cid: (name, company) for cid, name, company in db.all(
            f"SELECT customer_id, name, company FROM {t.customer} "
            f"WHERE customer_id IN ({marks})", chunk)}
        if not rows:
            continue
        terms: dict[str, set[str]] = {cid: text_terms(name) | text_terms(company)
                                      for cid, (name, company) in rows.items()
                                      if name != ERASED_NAME}
        for cid, kind, value in db.all(f"SELECT customer_id, kind, value FROM {t.contact} "
                                       f"WHERE customer_id IN ({marks})", chunk):
            if cid in terms:
                terms[cid] |= contact_terms(kind, value)
        found = [cid for cid in chunk if cid in rows]
        db.execute(f"DELETE FROM {t.term} WHERE customer_id IN ({','.join('?' * len(found))})",
                   found)
        db.executemany(f"INSERT INTO {t.term} (term, customer_id) VALUES (?,?)",
                       [(term, cid) for cid in found if cid in terms
                        for term in sorted(terms[cid])])
