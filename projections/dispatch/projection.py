"""The dispatch board: every work order with its stage, window and technician; its history;
the technicians (handle, skills, minutes per day).

Built from the customers' streams (work order events) and the technicians' records
(``Technician.Registered``/``SkillsChanged``); a booking on a technician's record is
not read here: the customer's stream is where an assignment is true. Late and
overdue depend on *now* and are computed by the view (``domain.dispatch.flags``),
never stored. The address and summary are personal: a ``PersonalDataErased``
clears them live, and a rebuild reads them as None from the erased events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from domain import dispatch as d
from domain.customer import Customer
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db

ORDER_COLUMNS = (
    "work_order_id", "customer_id", "case_id", "stage", "skill", "priority", "address",
    "summary", "technician_id", "requested_start_us", "requested_end_us", "window_start_us",
    "window_end_us", "created_us", "assigned_us", "arrived_us", "arrived_recorded_us",
    "done_us", "minutes_spent", "parts", "finished_us", "updated_us")

#: event class → action name shown in a work order's history
ACTIONS: dict[type, str] = {
    d.WorkOrderCreated: "created", d.WorkOrderScheduled: "scheduled",
    d.WorkOrderAssigned: "assigned", d.WorkOrderAccepted: "accepted",
    d.WorkOrderDeclined: "declined", d.WorkOrderEnRoute: "en_route",
    d.WorkOrderArrived: "arrived", d.WorkOrderCompleted: "done",
    d.WorkOrderClosed: "closed", d.WorkOrderCancelled: "cancelled",
}


def technician_key(originator_id: Any) -> str:
    """A technician's id as text, whatever the store named the stream."""
    return str(originator_id).removeprefix("technician-")


class DispatchProjection(Projection):
    name = "dispatch"
    tables = (
        Table("work_order", ("work_order_id",), ORDER_COLUMNS),
        Table("history", ("work_order_id", "position"),
              ("work_order_id", "position", "event_id", "customer_id", "action",
               "technician_id", "occurred_us", "recorded_us")),
        Table("technician", ("technician_id",),
              ("technician_id", "handle", "skills", "day_minutes")),
    )
    consumes = (Customer.Event, d.Technician.Registered, d.Technician.SkillsChanged)
    touches = (d.Technician.Registered, d.Technician.SkillsChanged, Customer.PersonalDataErased,
               *ACTIONS)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {work_order} (work_order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "case_id TEXT, stage TEXT NOT NULL, skill TEXT NOT NULL, priority TEXT NOT NULL, "
             "address TEXT, summary TEXT, technician_id TEXT, requested_start_us BIGINT, "
             "requested_end_us BIGINT, window_start_us BIGINT, window_end_us BIGINT, "
             "created_us BIGINT NOT NULL, assigned_us BIGINT, arrived_us BIGINT, "
             "arrived_recorded_us BIGINT, done_us BIGINT, minutes_spent INTEGER, parts TEXT, "
             "finished_us BIGINT, updated_us BIGINT NOT NULL)"),
            "CREATE INDEX {work_order}_customer ON {work_order} (customer_id)",
            "CREATE INDEX {work_order}_window ON {work_order} (window_start_us)",
            ("CREATE TABLE {history} (work_order_id TEXT NOT NULL, position BIGINT NOT NULL, "
             "event_id TEXT NOT NULL, customer_id TEXT NOT NULL, action TEXT NOT NULL, "
             "technician_id TEXT, occurred_us BIGINT NOT NULL, recorded_us BIGINT NOT NULL, "
             "PRIMARY KEY (work_order_id, position))"),
            ("CREATE TABLE {technician} (technician_id TEXT PRIMARY KEY, handle TEXT NOT NULL, "
             "skills TEXT NOT NULL, day_minutes INTEGER NOT NULL)"),
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for pos, e in items:
            if isinstance(e, d.Technician.Registered):
                db.execute(f"INSERT INTO {t.technician} (technician_id, handle, skills, "
                           "day_minutes) VALUES (?,?,?,?) ON CONFLICT (technician_id) DO NOTHING",
                           (technician_key(e.originator_id), e.handle,
                            orjson.dumps(sorted(e.skills)).decode(), e.day_minutes))
            elif isinstance(e, d.Technician.SkillsChanged):
                db.execute(f"UPDATE {t.technician} SET skills=? WHERE technician_id=?",
                           (orjson.dumps(sorted(e.skills)).decode(),
                            technician_key(e.originator_id)))
            elif isinstance(e, Customer.PersonalDataErased):
                db.execute(f"UPDATE {t.work_order} SET address=NULL, summary=NULL "
                           "WHERE customer_id=?", (customer_id(e),))
            elif type(e) in ACTIONS:
                self._order(db, t, pos, e)

    @staticmethod
    def _order(db: Db, t: Names, pos: int, e: Any) -> None:
        cid, wo, at = customer_id(e), e.work_order_id, us(e.occurred_at)
        tech = getattr(e, "technician_id", None)
        db.execute(f"INSERT INTO {t.history} (work_order_id, position, event_id, customer_id, "
                   "action, technician_id, occurred_us, recorded_us) VALUES (?,?,?,?,?,?,?,?) "
                   "ON CONFLICT (work_order_id, position) DO NOTHING",
                   (wo, pos, str(e.event_id), cid, ACTIONS[type(e)], tech, at, us(e.timestamp)))
        if isinstance(e, d.WorkOrderCreated):
            db.execute(
                f"INSERT INTO {t.work_order} (work_order_id, customer_id, case_id, stage, skill, "
                "priority, address, summary, requested_start_us, requested_end_us, "
                "window_start_us, window_end_us, created_us, updated_us) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (work_order_id) DO NOTHING",
                (wo, cid, e.case_id, "new", e.skill, e.priority, e.address, e.summary,
                 _us(e.window_start), _us(e.window_end), _us(e.window_start),
                 _us(e.window_end), at, at))
            return
        sets: dict[str, Any] = {"updated_us": at}
        if isinstance(e, d.WorkOrderScheduled):
            sets.update(stage="scheduled", window_start_us=_us(e.window_start),
                        window_end_us=_us(e.window_end))
        elif isinstance(e, d.WorkOrderAssigned):
            sets.update(stage="assigned", technician_id=tech, assigned_us=at,
                        window_start_us=_us(e.window_start), window_end_us=_us(e.window_end))
        elif isinstance(e, d.WorkOrderAccepted):
            sets.update(stage="accepted")
        elif isinstance(e, d.WorkOrderDeclined):
            sets.update(stage="scheduled", technician_id=None, assigned_us=None)
        elif isinstance(e, d.WorkOrderEnRoute):
            sets.update(stage="en_route")
        elif isinstance(e, d.WorkOrderArrived):
            sets.update(stage="on_site", arrived_us=at, arrived_recorded_us=us(e.timestamp))
        elif isinstance(e, d.WorkOrderCompleted):
            sets.update(stage="done", done_us=at, minutes_spent=e.minutes_spent, finished_us=at,
                        parts=orjson.dumps(e.parts, option=orjson.OPT_SORT_KEYS).decode())
        elif isinstance(e, d.WorkOrderClosed):
            sets.update(stage="closed", finished_us=at)
        elif isinstance(e, d.WorkOrderCancelled):
            sets.update(stage="cancelled", technician_id=None, finished_us=at)
        names = sorted(sets)
        db.execute(f"UPDATE {t.work_order} SET {', '.join(f'{n}=?' for n in names)} "
                   "WHERE work_order_id=?", [*(sets[n] for n in names), wo])


def _us(text: str | None) -> int | None:
    return us(datetime.fromisoformat(text)) if text else None
