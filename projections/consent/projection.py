"""Consent state per customer, channel and purpose, and every change behind it.

``state`` holds the current consent of each (customer, channel, purpose):
given (with its evidence and expiry), withdrawn or expired; ``change`` holds one
row per consent event, so a state drills down to its events. Whether a given
consent is still valid is a question of the day it is asked (its expiry), so
the view answers it for an ``as_of`` date; nothing clock-dependent is stored.
Consent events carry no personal data: an erasure changes nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import marketing as mk
from projections.engine import Names, Projection, Table
from projections.events import customer_id, us
from projections.store import Db

_STATE = ("customer_id", "consent_channel", "purpose", "state", "evidence_kind", "evidence_id",
          "expires_us", "changed_us", "event_id")
_CHANGE = ("event_id", "customer_id", "consent_channel", "purpose", "state", "detail",
           "campaign_id", "at_us")


class ConsentProjection(Projection):
    name = "consent"
    touches = (mk.ConsentRequested, mk.ConsentGiven, mk.ConsentWithdrawn, mk.ConsentExpired)
    tables = (Table("state", ("customer_id", "consent_channel", "purpose"), _STATE),
              Table("change", ("event_id",), _CHANGE))

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {state} (customer_id TEXT NOT NULL, consent_channel TEXT NOT NULL, "
             "purpose TEXT NOT NULL, state TEXT NOT NULL, evidence_kind TEXT, evidence_id TEXT, "
             "expires_us BIGINT, changed_us BIGINT NOT NULL, event_id TEXT NOT NULL, "
             "PRIMARY KEY (customer_id, consent_channel, purpose))"),
            ("CREATE TABLE {change} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "consent_channel TEXT NOT NULL, purpose TEXT NOT NULL, state TEXT NOT NULL, "
             "detail TEXT, campaign_id TEXT, at_us BIGINT NOT NULL)"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return ["CREATE INDEX {change}_customer ON {change} (customer_id, at_us)",
                "CREATE INDEX {state}_topic ON {state} (consent_channel, purpose, state)"]

    def apply(self, db: Db, t: Names, items: Sequence[Any]) -> None:
        for _, e in items:
            if isinstance(e, mk.ConsentRequested):
                _change(db, t, e, "requested", e.evidence_kind, None)
            elif isinstance(e, mk.ConsentGiven):
                _change(db, t, e, "given", e.evidence_kind, None)
                _state(db, t, e, "given", e.evidence_kind, e.evidence_id,
                       us(e.expires_at) if e.expires_at else None)
            elif isinstance(e, mk.ConsentWithdrawn):
                _change(db, t, e, "withdrawn", e.reason, e.campaign_id)
                _state(db, t, e, "withdrawn", None, None, None)
            elif isinstance(e, mk.ConsentExpired):
                _change(db, t, e, "expired", None, None)
                _state(db, t, e, "expired", None, None, None)


def _change(db: Db, t: Names, e: Any, state: str, detail: str | None,
            campaign: str | None) -> None:
    db.execute(f"INSERT INTO {t.change} (event_id, customer_id, consent_channel, purpose, state, "
               "detail, campaign_id, at_us) VALUES (?,?,?,?,?,?,?,?) "
               "ON CONFLICT (event_id) DO NOTHING",
               (str(e.event_id), customer_id(e), e.consent_channel, e.purpose, state, detail,
                campaign, us(e.occurred_at)))


def _state(db: Db, t: Names, e: Any, state: str, kind: str | None, evidence: str | None,
           expires: int | None) -> None:
    db.execute(f"INSERT INTO {t.state} (customer_id, consent_channel, purpose, state, "
               "evidence_kind, evidence_id, expires_us, changed_us, event_id) "
               "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (customer_id, consent_channel, purpose) "
               "DO UPDATE SET state=excluded.state, evidence_kind=excluded.evidence_kind, "
               "evidence_id=excluded.evidence_id, expires_us=excluded.expires_us, "
               "changed_us=excluded.changed_us, event_id=excluded.event_id",
               (customer_id(e), e.consent_channel, e.purpose, state, kind, evidence, expires,
                us(e.occurred_at), str(e.event_id)))
