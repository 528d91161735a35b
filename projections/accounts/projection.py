"""The accounts read model: the directory of accounts, their contacts' periods, and the
account timeline's index.

Tables: ``account`` (one row per account, its hierarchy by ``parent_id``),
``link`` (one row per contact period), ``customer`` (merges, as every read
model keeps them), ``touch`` (every customer event's position, customer, time
and kind — no text) and ``entry``, the account timeline's index: one row per
(account, event) for each event of a contact that occurred inside one of
their periods on the account, plus the account's own events. Paging an
account is then one index range, however many contacts and touchpoints it
has; the texts of a contact's rows are read from the timeline read model at
query time (``view``), so erasure, voids and corrections there show here too.

Membership: an event of customer C belongs to account A when a link on A
names C or a customer C was merged into (the survivor's periods cover its
duplicates' history, as the survivor's timeline shows it), and the event's
``occurred_at`` lies in ``[joined_at, left_at)``. When a period, a merge or an
event's date changes, the affected customers' rows are recomputed from
``touch`` (``_relink``); new events are matched in bulk per batch. Events are
applied in log order (structural changes flush the pending events first), so
a rebuild with any batch size equals the live model.

No personal text is stored: ids, kinds, times, role codes and the account's
own (legal-entity) fields only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from domain.accounts import Account
from domain.customer import Customer
from projections.customers import apply_identity, group
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, is_internal, kind_name, us
from projections.store import Db

ENTRY_COLUMNS = ("account_id", "position", "customer_id", "event_id", "kind", "channel",
                 "direction", "occurred_us", "recorded_us", "internal", "actor", "subject",
                 "summary")
TOUCH_COLUMNS = ("position", "customer_id", "event_id", "kind", "channel", "direction",
                 "occurred_us", "recorded_us", "internal")
ACCOUNT_COLUMNS = ("account_id", "name", "vat_number", "company_number", "industry", "size",
                   "owner", "parent_id", "partner_id", "addresses", "postcode", "country",
                   "opened_us", "position")
LINK_COLUMNS = ("link_id", "account_id", "customer_id", "role", "joined_us", "left_us")
_STRUCTURAL = (Customer.MergedInto, Customer.Unmerged, Customer.TouchpointCorrected)


def account_text(account_id: Any) -> str:
    return str(account_id).removeprefix("account-")


def account_kind(cls: type) -> str:
    """The timeline kind of an account's own event (``account_contact_joined``…)."""
    return f"account_{kind_name(cls)}"


class AccountsProjection(Projection):
    name = "accounts"
    tables = (
        Table("account", ("account_id",), ACCOUNT_COLUMNS),
        Table("link", ("link_id",), LINK_COLUMNS),
        Table("customer", ("customer_id",), ("customer_id", "merged_into", "partner_id")),
        Table("touch", ("position",), TOUCH_COLUMNS),
        Table("entry", ("account_id", "position"), ENTRY_COLUMNS),
    )
    consumes: ClassVar[tuple[type, ...]] = (Customer.Event, Account.Event)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {account} (account_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "vat_number TEXT, company_number TEXT, industry TEXT, size TEXT, owner TEXT, "
            "parent_id TEXT, partner_id TEXT, addresses TEXT NOT NULL, postcode TEXT, "
            "country TEXT, opened_us BIGINT NOT NULL, position BIGINT NOT NULL)"),
            "CREATE INDEX {account}_parent ON {account} (parent_id)",
            "CREATE INDEX {account}_name ON {account} (name, account_id)",
            ("CREATE TABLE {link} (link_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
            "customer_id TEXT NOT NULL, role TEXT NOT NULL, joined_us BIGINT NOT NULL, "
            "left_us BIGINT)"),
            "CREATE INDEX {link}_account ON {link} (account_id, joined_us)",
            "CREATE INDEX {link}_customer ON {link} (customer_id)",
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, merged_into TEXT, "
            "partner_id TEXT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {touch} (position BIGINT PRIMARY KEY, customer_id TEXT NOT NULL, "
            "event_id TEXT NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, "
            "direction TEXT NOT NULL, occurred_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL, "
            "internal SMALLINT NOT NULL)"),
            ("CREATE TABLE {entry} (account_id TEXT NOT NULL, position BIGINT NOT NULL, "
            "customer_id TEXT, event_id TEXT NOT NULL, kind TEXT NOT NULL, channel TEXT NOT NULL, "
            "direction TEXT NOT NULL, occurred_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL, "
            "internal SMALLINT NOT NULL, actor TEXT, subject TEXT, summary TEXT, "
            "PRIMARY KEY (account_id, position))"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return [
            "CREATE INDEX {touch}_customer ON {touch} (customer_id, occurred_us)",
            "CREATE INDEX {touch}_event ON {touch} (event_id)",
            "CREATE INDEX {entry}_page ON {entry} (account_id, occurred_us, position)",
            "CREATE INDEX {entry}_customer ON {entry} (customer_id)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        pending: list[Item] = []
        for item in items:
            e = item[1]
            if isinstance(e, Account.Event):
                _flush(db, t, pending)
                _account_event(db, t, item[0], e)
                continue
            if isinstance(e, _STRUCTURAL):
                _flush(db, t, pending)
            apply_identity(db, t.customer, e)
            pending.append(item)
            if isinstance(e, _STRUCTURAL):
                _flush(db, t, pending)
                _structural(db, t, e)
        _flush(db, t, pending)


def _flush(db: Db, t: Names, pending: list[Item]) -> None:
    """Index the pending customer events and add them to the accounts whose periods
    cover them (two queries for the whole batch besides the inserts)."""
    if not pending:
        return
    rows = [(pos, customer_id(e), event_id_text(e), kind_name(type(e)), e.channel, e.direction,
             us(e.occurred_at), us(e.timestamp), int(is_internal(e))) for pos, e in pending]
    pending.clear()
    db.insert_rows(t.touch, TOUCH_COLUMNS, rows)
    chains = _chains(db, t, {r[1] for r in rows})
    members = {m for chain in chains.values() for m in chain}
    links = _links_of(db, t, members)
    if not links:
        return
    found: dict[tuple[str, int], tuple[Any, ...]] = {}
    for row in rows:
        for member in chains[row[1]]:
            for account_id, joined, left in links.get(member, ()):
                if joined <= row[6] and (left is None or row[6] < left):
                    found[(account_id, row[0])] = (account_id, row[0], *row[1:], None, None, None)
    _insert_entries(db, t, list(found.values()))


def _insert_entries(db: Db, t: Names, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        marks = ",".join("?" * len(ENTRY_COLUMNS))
        db.executemany(f"INSERT INTO {t.entry} ({','.join(ENTRY_COLUMNS)}) VALUES ({marks}) "
                       "ON CONFLICT (account_id, position) DO NOTHING", rows)


def _chains(db: Db, t: Names, customers: set[str]) -> dict[str, list[str]]:
    """Each customer with the customers it was merged into (itself first)."""
    chains = {c: [c] for c in customers}
    if not customers:
        return chains
    marks = ",".join("?" * len(customers))
    merged = dict(db.all(f"SELECT customer_id, merged_into FROM {t.customer} WHERE customer_id "
                         f"IN ({marks}) AND merged_into IS NOT NULL", sorted(customers)))
    for c, into in merged.items():
        hops = 0
        while into is not None and into not in chains[c] and hops < 10:
            chains[c].append(into)
            into = db.scalar(f"SELECT merged_into FROM {t.customer} WHERE customer_id=?", (into,))
            hops += 1
    return chains


def _links_of(db: Db, t: Names,
              customers: set[str]) -> dict[str, list[tuple[str, int, int | None]]]:
    if not customers:
        return {}
    marks = ",".join("?" * len(customers))
    found: dict[str, list[tuple[str, int, int | None]]] = {}
    for cid, account_id, joined, left in db.all(
            f"SELECT customer_id, account_id, joined_us, left_us FROM {t.link} "
            f"WHERE customer_id IN ({marks})", sorted(customers)):
        found.setdefault(cid, []).append((account_id, joined, left))
    return found


def _relink(db: Db, t: Names, customers: list[str]) -> None:
    """Recompute the contact rows of these customers' events from ``touch``."""
    chains = _chains(db, t, set(customers))
    links = _links_of(db, t, {m for chain in chains.values() for m in chain})
    cols = ",".join(f"t.{c}" for c in TOUCH_COLUMNS)
    for cid in customers:
        db.execute(f"DELETE FROM {t.entry} WHERE customer_id=?", (cid,))
        for member in chains[cid]:
            for account_id, joined, left in links.get(member, ()):
                until = "" if left is None else " AND t.occurred_us<?"
                db.execute(
                    f"INSERT INTO {t.entry} ({','.join(ENTRY_COLUMNS)}) SELECT ?, {cols}, "
                    f"NULL, NULL, NULL FROM {t.touch} t WHERE t.customer_id=? "
                    f"AND t.occurred_us>=?{until} "
                    "ON CONFLICT (account_id, position) DO NOTHING",
                    (account_id, cid, joined, *(() if left is None else (left,))))


def _structural(db: Db, t: Names, e: Customer.Event) -> None:
    if isinstance(e, Customer.TouchpointCorrected):
        if e.corrected_occurred_at is None:
            return
        db.execute(f"UPDATE {t.touch} SET occurred_us=? WHERE event_id=?",
                   (us(e.corrected_occurred_at), e.corrected_event_id))
        _relink(db, t, [customer_id(e)])
        return
    # A merge or an unmerge changes whose periods cover the duplicate and its own duplicates.
    _relink(db, t, group(db, t.customer, customer_id(e)))


def _account_event(db: Db, t: Names, pos: int, e: Account.Event) -> None:
    aid = account_text(e.originator_id)
    subject: str | None = None
    summary: str | None = None
    if isinstance(e, Account.Opened):
        first = e.addresses[0] if e.addresses else {}
        db.execute(
            f"INSERT INTO {t.account} ({','.join(ACCOUNT_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(ACCOUNT_COLUMNS))}) ON CONFLICT (account_id) DO NOTHING",
            (aid, e.name, e.vat_number, e.company_number, e.industry, e.size, e.owner, None,
             None, orjson.dumps(e.addresses).decode(), first.get("postcode"),
             first.get("country"), us(e.occurred_at), pos))
        subject = f"Opened: {e.name}"
    elif isinstance(e, Account.Changed):
        changes = dict(e.changes)
        if "addresses" in changes:
            first = changes["addresses"][0] if changes["addresses"] else {}
            changes["postcode"], changes["country"] = first.get("postcode"), first.get("country")
            changes["addresses"] = orjson.dumps(changes["addresses"]).decode()
        sets = ",".join(f"{k}=?" for k in changes)
        db.execute(f"UPDATE {t.account} SET {sets} WHERE account_id=?", (*changes.values(), aid))
        subject = "Changed: " + ", ".join(sorted(e.changes))
    elif isinstance(e, Account.ParentSet):
        db.execute(f"UPDATE {t.account} SET parent_id=? WHERE account_id=?", (e.parent_id, aid))
        subject = f"Parent: {e.parent_id or 'none'}"
    elif isinstance(e, Account.PartnerAssigned):
        db.execute(f"UPDATE {t.account} SET partner_id=? WHERE account_id=?",
                   (e.partner_id, aid))
        subject = f"Partner: {e.partner_id or 'none'}"
    elif isinstance(e, Account.ContactJoined):
        db.execute(f"INSERT INTO {t.link} ({','.join(LINK_COLUMNS)}) VALUES (?,?,?,?,?,?) "
                   "ON CONFLICT (link_id) DO NOTHING",
                   (e.link_id, aid, e.customer_id, e.role, us(e.joined_at), None))
        subject, summary = f"Contact joined as {e.role}", e.customer_id
        _relink(db, t, group(db, t.customer, e.customer_id))
    elif isinstance(e, Account.ContactLeft):
        db.execute(f"UPDATE {t.link} SET left_us=? WHERE link_id=?", (us(e.left_at), e.link_id))
        subject, summary = "Contact left", e.customer_id
        _relink(db, t, group(db, t.customer, e.customer_id))
    _insert_entries(db, t, [(aid, pos, None, str(e.event_id), account_kind(type(e)), "system",
                             "internal", us(e.occurred_at), us(e.timestamp), 0, e.actor,
                             subject, summary)])
