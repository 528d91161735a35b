"""Reading a customer summary: the root's profile plus everything of its merge group."""

from __future__ import annotations

from typing import Any, TypedDict

import orjson

from projections.customers import Resolved, group, resolve
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.summary.projection import SummaryProjection
from projections.views import LiveView


class ChannelStats(TypedDict):
    touches: int
    last_contact_at: str | None


class OpenCallback(TypedDict):
    kind: str
    callback_id: str
    customer_id: str
    requested_at: str | None
    requested_for: str | None
    number: str | None
    reason: str | None


class CustomerSummary(TypedDict):
    customer_id: str
    name: str
    company: str | None
    lifecycle_stage: str | None
    stage_changed_at: str | None
    partner_id: str | None
    profile: dict[str, Any]
    registered_at: str | None
    contact_points: list[dict[str, Any]]
    channels: dict[str, ChannelStats]
    last_contact_at: str | None
    events: int
    notes: dict[str, int]
    open_items: list[OpenCallback]
    merged_from: list[str]


class SummaryView(LiveView):
    projection = SummaryProjection()

    def resolve(self, customer_id: str) -> Resolved | None:
        return self.run(lambda db, t: resolve(db, t.customer, customer_id))

    def summary(self, root: str) -> CustomerSummary | None:
        return self.run(lambda db, t: _summary(db, t, root))


def _summary(db: Db, t: Names, root: str) -> CustomerSummary | None:
    row = db.one(f"SELECT name, company, lifecycle_stage, stage_changed_us, partner_id, profile, "
                 f"registered_us FROM {t.customer} WHERE customer_id=?", (root,))
    if row is None:
        return None
    members = group(db, t.customer, root)
    marks = ",".join("?" * len(members))
    totals = db.one(f"SELECT SUM(events), SUM(shared_notes), SUM(internal_notes) "
                    f"FROM {t.customer} WHERE customer_id IN ({marks})", members) or (0, 0, 0)
    contacts = db.all(f"SELECT kind, value, label, customer_id FROM {t.contact} "
                      f"WHERE customer_id IN ({marks}) ORDER BY kind, added_us, value", members)
    channels: dict[str, ChannelStats] = {}
    last_any: int | None = None
    for channel, touches, last in db.all(
            f"SELECT channel, SUM(touches), MAX(last_us) FROM {t.channel} "
            f"WHERE customer_id IN ({marks}) GROUP BY channel ORDER BY channel", members):
        channels[channel] = {"touches": int(touches), "last_contact_at": iso(last)}
        last_any = last if last_any is None else max(last_any, last)
    callbacks = db.all(f"SELECT callback_id, customer_id, requested_us, requested_for_us, number, "
                       f"reason FROM {t.callback} WHERE customer_id IN ({marks}) "
                       "ORDER BY requested_us, callback_id", members)
    return {
        "customer_id": root, "name": row[0], "company": row[1], "lifecycle_stage": row[2],
        "stage_changed_at": iso(row[3]), "partner_id": row[4], "profile": orjson.loads(row[5]),
        "registered_at": iso(row[6]),
        "contact_points": [{"kind": k, "value": v, "label": lb, "customer_id": c}
                           for k, v, lb, c in contacts],
        "channels": channels,
        "last_contact_at": iso(last_any),
        "events": int(totals[0] or 0),
        "notes": {"shared": int(totals[1] or 0), "internal": int(totals[2] or 0)},
        "open_items": [{"kind": "callback", "callback_id": cb, "customer_id": c,
                        "requested_at": iso(r), "requested_for": iso(f), "number": n,
                        "reason": why} for cb, c, r, f, n, why in callbacks],
        "merged_from": sorted(members[1:]),
    }
