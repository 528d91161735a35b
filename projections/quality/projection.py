"""The data-quality read model: what duplicate suggestions, completeness and staleness
are computed from (``view``).

Per customer: name, company, postcode and owner (profile fields), merge and
erasure state, the last touchpoint's time, the contact points in their
*canonical* form for matching (an email without its ``+tag``, Gmail without
dots; numbers as E.164), and the contact points the events proved unusable
(a hard bounce, ``EmailBounced`` with action ``failed``; a call or call step
that ``failed`` to the number). Per account: name, VAT number, postcode,
owner. And staff's decisions on suggested pairs (``DuplicateReview``). And each
customer's consent per channel and purpose (``domain.marketing``'s consent events:
given with its expiry, withdrawn, expired), so completeness can say who has no valid
consent on a day; consent events carry nothing personal.

Names, companies and contact points are personal data: an erasure deletes the
customer's points and flags and blanks the texts (the erased events of a
rebuild carry none either), so live equals rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

from domain import marketing as mk
from domain.accounts import Account
from domain.customer import Customer
from domain.quality import DuplicateReview
from projections.accounts.projection import account_text
from projections.customers import apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, us
from projections.store import Db

PERSON_COLUMNS = ("customer_id", "name", "company", "postcode", "owner", "merged_into",
                  "partner_id", "erased", "last_touch_us")
_TOUCH_CHANNELS = ("phone", "email", "fax", "visit", "web")
_PROFILE = {"name": "name", "company": "company", "postcode": "postcode", "owner": "owner",
            "account_manager": "owner"}


def canonical(kind: str, value: str) -> str:
    """The form two spellings of one mailbox or number share."""
    if kind != "email":
        return f"tel:{value}"
    local, _, domain = value.casefold().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"email:{local}@{domain}"


class QualityProjection(Projection):
    name = "quality"
    tables = (
        Table("customer", ("customer_id",), PERSON_COLUMNS),
        Table("point", ("customer_id", "kind", "value"),
              ("customer_id", "kind", "value", "canon")),
        Table("invalid", ("event_id",),
              ("event_id", "customer_id", "kind", "value", "occurred_us", "reason")),
        Table("account", ("account_id",),
              ("account_id", "name", "vat_number", "postcode", "country", "owner")),
        Table("decision", ("kind", "first_id", "second_id"),
              ("kind", "first_id", "second_id", "decision")),
        Table("consent", ("customer_id", "consent_channel", "purpose"),
              ("customer_id", "consent_channel", "purpose", "state", "expires_us")),
    )
    consumes: ClassVar[tuple[type, ...]] = (Customer.Event, Account.Event, DuplicateReview.Event)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, name TEXT, company TEXT, "
            "postcode TEXT, owner TEXT, merged_into TEXT, partner_id TEXT, "
            "erased SMALLINT NOT NULL DEFAULT 0, last_touch_us BIGINT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {point} (customer_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "value TEXT NOT NULL, canon TEXT NOT NULL, PRIMARY KEY (customer_id, kind, value))"),
            "CREATE INDEX {point}_canon ON {point} (canon)",
            ("CREATE TABLE {invalid} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
            "kind TEXT NOT NULL, value TEXT NOT NULL, occurred_us BIGINT NOT NULL, "
            "reason TEXT NOT NULL)"),
            "CREATE INDEX {invalid}_customer ON {invalid} (customer_id)",
            ("CREATE TABLE {account} (account_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "vat_number TEXT, postcode TEXT, country TEXT, owner TEXT)"),
            ("CREATE TABLE {decision} (kind TEXT NOT NULL, first_id TEXT NOT NULL, "
            "second_id TEXT NOT NULL, decision TEXT NOT NULL, "
            "PRIMARY KEY (kind, first_id, second_id))"),
            ("CREATE TABLE {consent} (customer_id TEXT NOT NULL, consent_channel TEXT NOT NULL, "
             "purpose TEXT NOT NULL, state TEXT NOT NULL, expires_us BIGINT, "
             "PRIMARY KEY (customer_id, consent_channel, purpose))"),
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # A customer's latest touch is kept per batch and written once (an UPDATE per
        # touchpoint was most of this model's rebuild time), before any other event.
        latest: dict[str, int] = {}
        for _, e in items:
            if isinstance(e, Customer.Event) and _is_touch(e):
                cid = customer_id(e)
                if _touches_customer(e):
                    at = us(e.occurred_at)
                    held = latest.get(cid)
                    if held is None or at > held:
                        latest[cid] = at
                _flag_unusable(db, t, cid, e)
                if isinstance(e, _CONSENT):
                    _consent(db, t, cid, e)
                continue
            _flush_touches(db, t, latest)
            if isinstance(e, Account.Event):
                _account(db, t, e)
            elif isinstance(e, DuplicateReview.Decided):
                db.execute(f"INSERT INTO {t.decision} (kind, first_id, second_id, decision) "
                           "VALUES (?,?,?,?) ON CONFLICT (kind, first_id, second_id) DO NOTHING",
                           (e.kind, e.first_id, e.second_id, e.decision))
            elif isinstance(e, Customer.Event):
                _customer(db, t, e)
        _flush_touches(db, t, latest)


def _is_touch(e: Customer.Event) -> bool:
    """Any customer event but an identity, profile, contact point or erasure change."""
    return not _is_customer_change(type(e))


@lru_cache(maxsize=512)
def _is_customer_change(cls: type) -> bool:
    return cls in _IDENTITY or issubclass(cls, (
        Customer.Registered, Customer.ProfileChanged, Customer.ContactPointAdded,
        Customer.ContactPointRemoved, Customer.PersonalDataErased))


_IDENTITY = frozenset((Customer.Registered, Customer.MergedInto, Customer.Unmerged,
                       Customer.PartnerAssigned))


def _flush_touches(db: Db, t: Names, latest: dict[str, int]) -> None:
    if latest:
        db.executemany(f"UPDATE {t.customer} SET last_touch_us=? WHERE customer_id=? AND "
                       "(last_touch_us IS NULL OR last_touch_us<?)",
                       [(at, cid, at) for cid, at in latest.items()])
        latest.clear()


def _customer(db: Db, t: Names, e: Customer.Event) -> None:
    cid = customer_id(e)
    if isinstance(e, Customer.Registered):
        apply_identity(db, t.customer, e, name=e.name, company=e.company)
        return
    if apply_identity(db, t.customer, e):
        return
    if isinstance(e, Customer.ProfileChanged):
        # A customer's owner: its profile's ``owner``, or the demo's ``account_manager``.
        changes = {_PROFILE[k]: v for k, v in (e.changes or {}).items() if k in _PROFILE}
        if changes:
            sets = ",".join(f"{k}=?" for k in changes)
            db.execute(f"UPDATE {t.customer} SET {sets} WHERE customer_id=?",
                       (*changes.values(), cid))
    elif isinstance(e, Customer.ContactPointAdded) and e.value:
        db.execute(f"INSERT INTO {t.point} (customer_id, kind, value, canon) VALUES (?,?,?,?) "
                   "ON CONFLICT (customer_id, kind, value) DO NOTHING",
                   (cid, e.kind, e.value, canonical(e.kind, e.value)))
    elif isinstance(e, Customer.ContactPointRemoved) and e.value:
        db.execute(f"DELETE FROM {t.point} WHERE customer_id=? AND kind=? AND value=?",
                   (cid, e.kind, e.value))
    elif isinstance(e, Customer.PersonalDataErased):
        db.execute(f"DELETE FROM {t.point} WHERE customer_id=?", (cid,))
        db.execute(f"DELETE FROM {t.invalid} WHERE customer_id=?", (cid,))
        db.execute(f"UPDATE {t.customer} SET name=NULL, company=NULL, postcode=NULL, erased=1 "
                   "WHERE customer_id=?", (cid,))


_CONSENT = (mk.ConsentGiven, mk.ConsentWithdrawn, mk.ConsentExpired)


def _consent(db: Db, t: Names, cid: str, e: Any) -> None:
    """A consent event (a touch like any business event) also sets that consent's state."""
    given = isinstance(e, mk.ConsentGiven)
    expires = us(e.expires_at) if given and e.expires_at else None
    db.execute(f"INSERT INTO {t.consent} (customer_id, consent_channel, purpose, state, "
               "expires_us) VALUES (?,?,?,?,?) ON CONFLICT (customer_id, consent_channel, "
               "purpose) DO UPDATE SET state=excluded.state, expires_us=excluded.expires_us",
               (cid, e.consent_channel, e.purpose,
                "given" if given else "withdrawn" if isinstance(e, mk.ConsentWithdrawn)
                else "expired", expires))


def _touches_customer(e: Customer.Event) -> bool:
    return type(e).apply is Customer.Event.apply and e.channel in _TOUCH_CHANNELS


def _flag_unusable(db: Db, t: Names, cid: str, e: Customer.Event) -> None:
    flagged = _unusable(e)
    if flagged is not None:
        db.execute(f"INSERT INTO {t.invalid} (event_id, customer_id, kind, value, occurred_us, "
                   "reason) VALUES (?,?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
                   (event_id_text(e), cid, *flagged, us(e.occurred_at), _REASONS[flagged[0]]))


_REASONS = {"email": "hard bounce", "phone": "call failed"}


def _unusable(e: Customer.Event) -> tuple[str, str] | None:
    """(kind, value) of a contact point this event proved unusable."""
    if isinstance(e, Customer.EmailBounced) and e.action == "failed" and e.recipient:
        return ("email", e.recipient.casefold())
    failed = ((isinstance(e, Customer.CallLogged) and e.outcome == "failed")
              or (isinstance(e, Customer.CallStepRecorded) and e.step == "failed"))
    if failed:
        number = e.from_number if e.direction == "inbound" else e.to_number  # type: ignore[attr-defined]
        if number:
            return ("phone", number)
    return None


def _account(db: Db, t: Names, e: Any) -> None:
    aid = account_text(e.originator_id)
    if isinstance(e, Account.Opened):
        first = e.addresses[0] if e.addresses else {}
        db.execute(f"INSERT INTO {t.account} (account_id, name, vat_number, postcode, country, "
                   "owner) VALUES (?,?,?,?,?,?) ON CONFLICT (account_id) DO NOTHING",
                   (aid, e.name, e.vat_number, first.get("postcode"), first.get("country"),
                    e.owner))
    elif isinstance(e, Account.Changed):
        changes = {k: v for k, v in e.changes.items() if k in ("name", "vat_number", "owner")}
        if "addresses" in e.changes:
            first = e.changes["addresses"][0] if e.changes["addresses"] else {}
            changes["postcode"], changes["country"] = first.get("postcode"), first.get("country")
        if changes:
            sets = ",".join(f"{k}=?" for k in changes)
            db.execute(f"UPDATE {t.account} SET {sets} WHERE account_id=?",
                       (*changes.values(), aid))
