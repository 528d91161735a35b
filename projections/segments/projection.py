"""Segments: named rules (``domain.marketing`` rule language) and the customer facts they
are evaluated over.

Per customer: lifecycle stage, partner, touches and last contact per channel
(voids and corrections honoured as the aggregate does), and the consents given
with their expiry. A customer merged into another or erased leaves the facts
(no campaign should target them). Members are evaluated by the view for an
``as_of`` day: "last contact older than N days" and consent expiry depend on
it, and nothing clock-dependent is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from domain import marketing as mk
from domain import sales
from domain.customer import Customer
from projections.campaigns.projection import record_id
from projections.engine import Names, Projection, Table
from projections.events import customer_id, us
from projections.store import Db

_SEGMENT = ("segment_id", "name", "rule", "event_id")
_FACTS = ("customer_id", "lifecycle_stage", "partner_id")
_ACTIVITY = ("customer_id", "channel", "touches", "last_us")
_CONSENT = ("customer_id", "topic", "expires_us")
_PURCHASE = ("order_number", "customer_id", "currency", "total_minor", "placed_us",
             "cancelled_us")
_REFUND = ("event_id", "order_number", "amount_minor", "at_us")


class SegmentsProjection(Projection):
    name = "segments"
    tables = (Table("segment", ("segment_id",), _SEGMENT),
              Table("facts", ("customer_id",), _FACTS),
              Table("activity", ("customer_id", "channel"), _ACTIVITY),
              Table("consent", ("customer_id", "topic"), _CONSENT),
              Table("purchase", ("order_number",), _PURCHASE),
              Table("purchase_refund", ("event_id",), _REFUND))
    consumes = (Customer.Event, mk.Segment.Event)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {segment} (segment_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
             "rule TEXT NOT NULL, event_id TEXT NOT NULL)"),
            ("CREATE TABLE {facts} (customer_id TEXT PRIMARY KEY, lifecycle_stage TEXT NOT NULL, "
             "partner_id TEXT)"),
            ("CREATE TABLE {activity} (customer_id TEXT NOT NULL, channel TEXT NOT NULL, "
             "touches INTEGER NOT NULL, last_us BIGINT, PRIMARY KEY (customer_id, channel))"),
            ("CREATE TABLE {consent} (customer_id TEXT NOT NULL, topic TEXT NOT NULL, "
             "expires_us BIGINT, PRIMARY KEY (customer_id, topic))"),
            ("CREATE TABLE {purchase} (order_number TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "currency TEXT NOT NULL, total_minor BIGINT NOT NULL, placed_us BIGINT NOT NULL, "
             "cancelled_us BIGINT)"),
            "CREATE INDEX {purchase}_customer ON {purchase} (customer_id)",
            ("CREATE TABLE {purchase_refund} (event_id TEXT PRIMARY KEY, order_number TEXT NOT "
             "NULL, amount_minor BIGINT NOT NULL, at_us BIGINT NOT NULL)"),
            "CREATE INDEX {purchase_refund}_order ON {purchase_refund} (order_number)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Any]) -> None:
        # Touches are added up per (customer, channel) and written as one upsert each,
        # before any other event is handled (an upsert per touchpoint was most of this
        # model's rebuild time); the sum and the latest time are what the upserts give.
        touches: dict[tuple[str, str], list[int]] = {}
        for _, e in items:
            handler = _HANDLERS.get(type(e))
            if handler is not None:
                _flush(db, t, touches)
                handler(db, t, e)
            elif isinstance(e, Customer.Event) and type(e).apply is Customer.Event.apply:
                at = us(e.occurred_at)
                seen = touches.get((customer_id(e), e.channel))
                if seen is None:
                    touches[(customer_id(e), e.channel)] = [1, at]
                else:
                    seen[0] += 1
                    seen[1] = max(seen[1], at)
        _flush(db, t, touches)


def _flush(db: Db, t: Names, touches: dict[tuple[str, str], list[int]]) -> None:
    for (cid, channel), (by, last) in touches.items():
        _touch(db, t, cid, channel, by, last)
    touches.clear()


def _segment(db: Db, t: Names, e: Any) -> None:
    db.execute(f"INSERT INTO {t.segment} (segment_id, name, rule, event_id) VALUES (?,?,?,?) "
               "ON CONFLICT (segment_id) DO UPDATE SET name=excluded.name, rule=excluded.rule, "
               "event_id=excluded.event_id",
               (record_id(e.originator_id, "segment"), e.name,
                orjson.dumps(e.rule, option=orjson.OPT_SORT_KEYS).decode(), str(e.event_id)))


def _registered(db: Db, t: Names, e: Customer.Registered) -> None:
    db.execute(f"INSERT INTO {t.facts} (customer_id, lifecycle_stage) VALUES (?,?) "
               "ON CONFLICT (customer_id) DO NOTHING", (customer_id(e), e.lifecycle_stage))


def _stage(db: Db, t: Names, e: Customer.LifecycleStageChanged) -> None:
    db.execute(f"UPDATE {t.facts} SET lifecycle_stage=? WHERE customer_id=?",
               (e.to_stage, customer_id(e)))


def _partner(db: Db, t: Names, e: Customer.PartnerAssigned) -> None:
    db.execute(f"UPDATE {t.facts} SET partner_id=? WHERE customer_id=?",
               (e.partner_id, customer_id(e)))


def _touch(db: Db, t: Names, cid: str, channel: str, by: int, last: int | None) -> None:
    db.execute(f"INSERT INTO {t.activity} (customer_id, channel, touches, last_us) "
               "VALUES (?,?,?,?) ON CONFLICT (customer_id, channel) DO UPDATE SET "
               "touches = {activity}.touches + excluded.touches, last_us = CASE "
               "WHEN {activity}.last_us IS NULL OR excluded.last_us > {activity}.last_us "
               "THEN excluded.last_us ELSE {activity}.last_us END".replace(
                   "{activity}", t.activity), (cid, channel, by, last))


def _last_of(stamp: str | None) -> int | None:
    return us(datetime.fromisoformat(stamp)) if stamp else None


def _voided(db: Db, t: Names, e: Customer.TouchpointVoided) -> None:
    db.execute(f"UPDATE {t.activity} SET touches = touches - 1, last_us=? WHERE customer_id=? "
               "AND channel=?", (_last_of(e.channel_last_contact), customer_id(e),
                                 e.voided_channel))


def _corrected(db: Db, t: Names, e: Customer.TouchpointCorrected) -> None:
    if e.corrected_occurred_at is not None:
        db.execute(f"UPDATE {t.activity} SET last_us=? WHERE customer_id=? AND channel=?",
                   (_last_of(e.channel_last_contact), customer_id(e), e.corrected_channel))


def _gone(db: Db, t: Names, e: Any) -> None:
    cid = customer_id(e)
    for table in (t.facts, t.activity, t.consent):
        db.execute(f"DELETE FROM {table} WHERE customer_id=?", (cid,))


def _given(db: Db, t: Names, e: mk.ConsentGiven) -> None:
    db.execute(f"INSERT INTO {t.consent} (customer_id, topic, expires_us) VALUES (?,?,?) "
               "ON CONFLICT (customer_id, topic) DO UPDATE SET expires_us=excluded.expires_us",
               (customer_id(e), mk.topic(e.consent_channel, e.purpose),
                us(e.expires_at) if e.expires_at else None))


def _ended(db: Db, t: Names, e: Any) -> None:
    db.execute(f"DELETE FROM {t.consent} WHERE customer_id=? AND topic=?",
               (customer_id(e), mk.topic(e.consent_channel, e.purpose)))


def _merged(db: Db, t: Names, e: Customer.MergedInto) -> None:
    _gone(db, t, e)
    db.execute(f"UPDATE {t.purchase} SET customer_id=? WHERE customer_id=?",
               (str(e.target_id), customer_id(e)))


def _placed(db: Db, t: Names, e: sales.OrderPlaced) -> None:
    db.execute(f"INSERT INTO {t.purchase} (order_number, customer_id, currency, total_minor, "
               "placed_us) VALUES (?,?,?,?,?) ON CONFLICT (order_number) DO NOTHING",
               (e.order_number, customer_id(e), e.currency,
                sales.to_minor(e.total, e.currency), us(e.occurred_at)))


def _refunded(db: Db, t: Names, e: sales.OrderReturned) -> None:
    db.execute(f"INSERT INTO {t.purchase_refund} (event_id, order_number, amount_minor, at_us) "
               "VALUES (?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
               (str(e.event_id), e.order_number, sales.to_minor(e.amount, e.currency),
                us(e.occurred_at)))


def _cancelled(db: Db, t: Names, e: sales.OrderCancelled) -> None:
    db.execute(f"UPDATE {t.purchase} SET cancelled_us=? WHERE order_number=?",
               (us(e.occurred_at), e.order_number))


_HANDLERS: dict[type, Any] = {
    mk.Segment.Defined: _segment,
    mk.Segment.Redefined: _segment,
    Customer.Registered: _registered,
    Customer.LifecycleStageChanged: _stage,
    Customer.PartnerAssigned: _partner,
    Customer.TouchpointVoided: _voided,
    Customer.TouchpointCorrected: _corrected,
    Customer.MergedInto: _merged,
    Customer.PersonalDataErased: _gone,
    mk.ConsentGiven: _given,
    mk.ConsentWithdrawn: _ended,
    mk.ConsentExpired: _ended,
    sales.OrderPlaced: _placed,
    sales.OrderReturned: _refunded,
    sales.OrderCancelled: _cancelled,
}
