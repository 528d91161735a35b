"""The auto-replies read model: new cases an acknowledgement may answer, and the facts
the RFC 3834 rules need.

``inbound``  inbound emails and web forms (a case's possible origin): Message-ID,
             sender, References, the raw message's blob, the subject
``opened``   every case opened from a touchpoint, with what became of its
             acknowledgement (``outcome`` NULL: not decided yet; ``sent``; or the
             loop rule that withheld it)
``contact``  each customer's first email address (where a web form's case is answered)
``bounced``  addresses a delivery report said failed
``replied``  when each recipient key was last auto-answered

Addresses, subjects and references are personal: a ``PersonalDataErased`` deletes the
customer's rows here (a rebuild reads those events erased and stores none), so the live
model equals a rebuild. Nothing is sent from here: the auto-reply policy
(``touchstream.auto_replies``) reads it and sends ``AcknowledgeCase`` commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from domain import replies as r
from domain import service as s
from domain.customer import Customer
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, is_erased, us
from projections.store import Db

_PERSONAL_TABLES = ("inbound", "contact", "bounced", "replied")


class AutoRepliesProjection(Projection):
    name = "auto_replies"
    touches = (Customer.PersonalDataErased, s.CaseOpened, r.AutoReplyQueued,
               r.AutoReplyWithheld, Customer.EmailRecorded, Customer.WebFormSubmitted,
               Customer.ContactPointAdded, Customer.ContactPointRemoved, Customer.EmailBounced)
    tables = (
        Table("inbound", ("event_id",), ("event_id", "customer_id", "kind", "message_id",
                                         "sender", "refs", "raw_ref", "subject")),
        Table("opened", ("event_id",), ("event_id", "customer_id", "case_id", "origin_event_id",
                                        "case_channel", "opened_us", "outcome")),
        Table("contact", ("customer_id",), ("customer_id", "address")),
        Table("bounced", ("customer_id", "address"), ("customer_id", "address")),
        Table("replied", ("recipient_key",), ("recipient_key", "customer_id", "last_us")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {inbound} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "kind TEXT NOT NULL, message_id TEXT, sender TEXT, refs TEXT NOT NULL, "
             "raw_ref TEXT, subject TEXT)"),
            ("CREATE TABLE {opened} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "case_id TEXT NOT NULL, origin_event_id TEXT NOT NULL, case_channel TEXT NOT NULL, "
             "opened_us BIGINT NOT NULL, outcome TEXT)"),
            "CREATE TABLE {contact} (customer_id TEXT PRIMARY KEY, address TEXT NOT NULL)",
            ("CREATE TABLE {bounced} (customer_id TEXT NOT NULL, address TEXT NOT NULL, "
             "PRIMARY KEY (customer_id, address))"),
            ("CREATE TABLE {replied} (recipient_key TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "last_us BIGINT NOT NULL)"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return ["CREATE INDEX {opened}_pending ON {opened} (outcome, opened_us)",
                "CREATE INDEX {inbound}_customer ON {inbound} (customer_id)"]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # Inbound rows, the most of this model's, go in one insert for the batch (a
        # statement per inbound email or form was one per event on PostgreSQL); nothing
        # here reads them, and an erasure deletes them: written before it, and at the end.
        inbound: list[tuple[Any, ...]] = []
        for _, e in items:
            cid = customer_id(e)
            if isinstance(e, Customer.PersonalDataErased):
                _insert_inbound(db, t, inbound)
                for table in _PERSONAL_TABLES:
                    db.execute(f"DELETE FROM {t[table]} WHERE customer_id = ?", (cid,))
            elif isinstance(e, s.CaseOpened):
                if e.origin_event_id is not None:
                    db.execute(
                        f"INSERT INTO {t.opened} (event_id, customer_id, case_id, "
                        "origin_event_id, case_channel, opened_us) VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT (event_id) DO NOTHING",
                        (event_id_text(e), cid, e.case_id, e.origin_event_id, e.case_channel,
                         us(e.occurred_at)))
            elif isinstance(e, (r.AutoReplyQueued, r.AutoReplyWithheld)):
                sent = isinstance(e, r.AutoReplyQueued)
                db.execute(f"UPDATE {t.opened} SET outcome = ? WHERE event_id = ?",
                           ("sent" if sent else e.reason,  # type: ignore[union-attr]
                            e.trigger_event_id))
                if sent and not is_erased(e):
                    db.execute(
                        f"INSERT INTO {t.replied} (recipient_key, customer_id, last_us) "
                        "VALUES (?,?,?) ON CONFLICT (recipient_key) DO UPDATE SET "
                        "last_us = excluded.last_us, customer_id = excluded.customer_id",
                        (e.recipient_key, cid, us(e.occurred_at)))  # type: ignore[union-attr]
            elif is_erased(e):
                continue  # nothing personal of an erased customer is kept here
            elif isinstance(e, Customer.EmailRecorded) and e.direction == "inbound":
                inbound.append((event_id_text(e), cid, "email", e.message_id,
                                e.from_address.lower(), orjson.dumps(e.references).decode(),
                                e.raw_ref, e.subject))
            elif isinstance(e, Customer.WebFormSubmitted):
                inbound.append((event_id_text(e), cid, "web", None, None, "[]", None,
                                e.form_name))
            elif isinstance(e, Customer.ContactPointAdded) and e.kind == "email":
                db.execute(f"INSERT INTO {t.contact} (customer_id, address) VALUES (?, ?) "
                           "ON CONFLICT (customer_id) DO NOTHING", (cid, e.value.lower()))
            elif isinstance(e, Customer.ContactPointRemoved) and e.kind == "email":
                db.execute(f"DELETE FROM {t.contact} WHERE customer_id = ? AND address = ?",
                           (cid, e.value.lower()))
            elif isinstance(e, Customer.EmailBounced) and e.recipient and \
                    e.action.lower() == "failed":
                db.execute(f"INSERT INTO {t.bounced} (customer_id, address) VALUES (?, ?) "
                           "ON CONFLICT (customer_id, address) DO NOTHING",
                           (cid, e.recipient.lower()))
        _insert_inbound(db, t, inbound)


def _insert_inbound(db: Db, t: Names, rows: list[tuple[Any, ...]]) -> None:
    """The inbound rows gathered so far, in order (the first of an event kept), then none."""
    db.executemany(f"INSERT INTO {t.inbound} (event_id, customer_id, kind, message_id, sender, "
                   "refs, raw_ref, subject) VALUES (?,?,?,?,?,?,?,?) "
                   "ON CONFLICT (event_id) DO NOTHING", rows)
    rows.clear()
