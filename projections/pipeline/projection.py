"""The pipeline read model: every opportunity, its stage visits and the events behind it.

One row per opportunity (current stage, status, amount in minor units and
currency, probability recorded with the stage, owner, expected close month),
one row per *stage visit* (named by the event that entered it; entered, left, the stage it left for and that
stage's probability: conversion rates and days in stage come from these), and
one row per event (drill-down to the events behind a figure). Times are the
events' ``occurred_at``. Nothing here depends on the clock or the settings:
probabilities come from the events, as-of figures are computed by the view.

The title is the only personal field: it is cleared on
``PersonalDataErased`` (a rebuild reads it as None from the erased events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import sales
from domain.customer import Customer
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, kind_of, us
from projections.store import Db

_OPPORTUNITY_EVENTS = (sales.OpportunityOpened, sales.OpportunityStageMoved,
                       sales.OpportunityChanged, sales.OpportunityWon, sales.OpportunityLost,
                       sales.OpportunityReopened)


class PipelineProjection(Projection):
    name = "pipeline"
    touches = (*IDENTITY_EVENTS, Customer.PersonalDataErased, *_OPPORTUNITY_EVENTS)
    tables = (
        Table("customer", ("customer_id",), ("customer_id", "partner_id", "merged_into")),
        Table("opportunity", ("opportunity_id",),
              ("opportunity_id", "customer_id", "title", "status", "stage", "probability",
               "amount_minor", "currency", "owner", "expected_close", "close_month",
               "opened_us", "stage_since_us", "closed_us", "source_campaign_id", "account_id",
               "order_reference", "loss_reason")),
        Table("visit", ("visit_id",),
              ("visit_id", "opportunity_id", "stage", "probability", "entered_us", "left_us",
               "next_stage", "next_probability")),
        Table("event", ("event_id",),
              ("event_id", "opportunity_id", "customer_id", "position", "kind")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, partner_id TEXT, "
             "merged_into TEXT)"),
            ("CREATE TABLE {opportunity} (opportunity_id TEXT PRIMARY KEY, customer_id TEXT NOT "
             "NULL, title TEXT, status TEXT NOT NULL, stage TEXT NOT NULL, probability INTEGER "
             "NOT NULL, amount_minor BIGINT NOT NULL, currency TEXT NOT NULL, owner TEXT NOT "
             "NULL, expected_close TEXT NOT NULL, close_month TEXT NOT NULL, opened_us BIGINT "
             "NOT NULL, stage_since_us BIGINT NOT NULL, closed_us BIGINT, source_campaign_id "
             "TEXT, account_id TEXT, order_reference TEXT, loss_reason TEXT)"),
            "CREATE INDEX {opportunity}_customer ON {opportunity} (customer_id)",
            ("CREATE TABLE {visit} (visit_id TEXT PRIMARY KEY, opportunity_id TEXT NOT NULL, "
             "stage TEXT NOT NULL, probability INTEGER NOT NULL, entered_us BIGINT NOT NULL, "
             "left_us BIGINT, next_stage TEXT, next_probability INTEGER)"),
            "CREATE INDEX {visit}_opportunity ON {visit} (opportunity_id, left_us)",
            ("CREATE TABLE {event} (event_id TEXT PRIMARY KEY, opportunity_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL)"),
            "CREATE INDEX {event}_opportunity ON {event} (opportunity_id, position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # The event rows go in one insert for the batch (nothing here reads or changes
        # them): a statement per opportunity event was a third of this model's statements.
        events: list[tuple[Any, ...]] = []
        for pos, e in items:
            cid = customer_id(e)
            if apply_identity(db, t.customer, e):
                continue
            if isinstance(e, Customer.PersonalDataErased):
                db.execute(f"UPDATE {t.opportunity} SET title=NULL WHERE customer_id=?", (cid,))
                continue
            opportunity_id = getattr(e, "opportunity_id", None)
            if not isinstance(e, _OPPORTUNITY_EVENTS) or opportunity_id is None:
                continue
            at = us(e.occurred_at)
            events.append((event_id_text(e), opportunity_id, cid, pos, kind_of(e)))
            _apply(db, t, cid, e, at)
        db.executemany(f"INSERT INTO {t.event} (event_id, opportunity_id, customer_id, position, "
                       "kind) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING", events)


def _apply(db: Db, t: Names, cid: str, e: Any, at: int) -> None:
    oid = e.opportunity_id
    if isinstance(e, sales.OpportunityOpened):
        db.execute(
            f"INSERT INTO {t.opportunity} (opportunity_id, customer_id, title, status, stage, "
            "probability, amount_minor, currency, owner, expected_close, close_month, opened_us, "
            "stage_since_us, source_campaign_id, account_id) VALUES (?,?,?,'open',?,?,?,?,?,?,?,"
            "?,?,?,?) ON CONFLICT (opportunity_id) DO NOTHING",
            (oid, cid, e.title, e.stage, e.probability, sales.to_minor(e.amount, e.currency),
             e.currency, e.owner, e.expected_close, e.expected_close[:7],
             at, at, e.source_campaign_id, e.account_id))
        _enter(db, t, event_id_text(e), oid, e.stage, e.probability, at)
    elif isinstance(e, sales.OpportunityChanged):
        db.execute(f"UPDATE {t.opportunity} SET amount_minor=?, currency=?, owner=?, "
                   "expected_close=?, close_month=? WHERE opportunity_id=?",
                   (sales.to_minor(e.amount, e.currency), e.currency, e.owner,
                    e.expected_close, e.expected_close[:7], oid))
    elif isinstance(e, sales.OpportunityStageMoved | sales.OpportunityReopened):
        _leave(db, t, oid, e.to_stage, e.probability, at)
        _enter(db, t, event_id_text(e), oid, e.to_stage, e.probability, at)
        db.execute(f"UPDATE {t.opportunity} SET status='open', stage=?, probability=?, "
                   "stage_since_us=?, closed_us=NULL, order_reference=NULL, loss_reason=NULL "
                   "WHERE opportunity_id=?", (e.to_stage, e.probability, at, oid))
    elif isinstance(e, sales.OpportunityWon | sales.OpportunityLost):
        won = isinstance(e, sales.OpportunityWon)
        stage = "won" if won else "lost"
        _leave(db, t, oid, stage, e.probability, at)
        db.execute(f"UPDATE {t.opportunity} SET status=?, stage=?, probability=?, "
                   "stage_since_us=?, closed_us=?, order_reference=?, loss_reason=? "
                   "WHERE opportunity_id=?",
                   (stage, stage, e.probability, at, at, e.order_reference if won else None,
                    None if won else e.reason, oid))


def _enter(db: Db, t: Names, visit_id: str, oid: str, stage: str, probability: int,
           at: int) -> None:
    """A stage visit, named by the event that entered the stage."""
    db.execute(f"INSERT INTO {t.visit} (visit_id, opportunity_id, stage, probability, "
               "entered_us) VALUES (?,?,?,?,?) ON CONFLICT (visit_id) DO NOTHING",
               (visit_id, oid, stage, probability, at))


def _leave(db: Db, t: Names, oid: str, to_stage: str, probability: int, at: int) -> None:
    db.execute(f"UPDATE {t.visit} SET left_us=?, next_stage=?, next_probability=? "
               "WHERE opportunity_id=? AND left_us IS NULL", (at, to_stage, probability, oid))
