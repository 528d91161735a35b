"""Reading the dispatch board: work orders by technician and day, unassigned work, travel
windows between visits, late and overdue at a given *now*, technician utilisation; a
customer's work orders; one work order with its history.

Days are UTC calendar days of a window's start. The board carries no personal data
(no address, no summary): the work order's own page and the customer's list do.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

import orjson

from domain import dispatch as d
from projections.dispatch.projection import DispatchProjection
from projections.engine import Names
from projections.events import iso, moment, us
from projections.store import Db
from projections.views import LiveView

MAX_DAYS = 31
MAX_ORDERS = 200
_DAY_US = 86_400_000_000
_BOARD = ("work_order_id, customer_id, case_id, stage, skill, priority, technician_id, "
          "window_start_us, window_end_us, arrived_us, done_us, minutes_spent")


class InvalidBoardQueryError(ValueError):
    """Raised when a board is asked for too many days or a malformed cursor."""


class BoardOrder(TypedDict):
    work_order_id: str
    customer_id: str
    case_id: str | None
    stage: str
    skill: str
    priority: str
    technician_id: str | None
    window_start: str | None
    window_end: str | None
    arrived_at: str | None
    done_at: str | None
    minutes_spent: int | None
    late: bool
    overdue: bool


def _order(row: Sequence[Any], now: datetime) -> BoardOrder:
    start, end, arrived = row[7], row[8], row[9]
    late, overdue = d.flags(row[3], moment(start) if start is not None else None,
                            moment(end) if end is not None else None,
                            moment(arrived) if arrived is not None else None, now)
    return {"work_order_id": row[0], "customer_id": row[1], "case_id": row[2], "stage": row[3],
            "skill": row[4], "priority": row[5], "technician_id": row[6],
            "window_start": iso(start), "window_end": iso(end), "arrived_at": iso(arrived),
            "done_at": iso(row[10]), "minutes_spent": row[11], "late": late,
            "overdue": overdue}


def _travel(orders: list[BoardOrder]) -> list[dict[str, Any]]:
    """The gaps between one visit's window and the next: the time to travel in."""
    out = []
    timed = sorted((o for o in orders if o["window_start"] and o["window_end"]),
                   key=lambda o: (o["window_start"], o["work_order_id"]))
    for before, after in itertools.pairwise(timed):
        gap = (datetime.fromisoformat(str(after["window_start"]))
               - datetime.fromisoformat(str(before["window_end"])))
        if gap > timedelta(0):
            out.append({"after": before["work_order_id"], "before": after["work_order_id"],
                        "start": before["window_end"], "end": after["window_start"],
                        "minutes": int(gap.total_seconds() // 60)})
    return out


def _minutes(o: BoardOrder) -> int:
    if not o["window_start"] or not o["window_end"]:
        return 0
    span = (datetime.fromisoformat(o["window_end"])
            - datetime.fromisoformat(o["window_start"]))
    return int(span.total_seconds() // 60)


def _board(db: Db, t: Names, first: date, days: int, now: datetime) -> dict[str, Any]:
    low = us(datetime(first.year, first.month, first.day, tzinfo=UTC))
    high = low + days * _DAY_US
    rows = db.all(f"SELECT {_BOARD} FROM {t.work_order} WHERE window_start_us >= ? "
                  "AND window_start_us < ? AND stage <> 'cancelled' "
                  "ORDER BY window_start_us, work_order_id", (low, high))
    techs = db.all(f"SELECT technician_id, handle, skills, day_minutes FROM {t.technician} "
                   "ORDER BY handle, technician_id")
    by_tech: dict[str, dict[str, list[BoardOrder]]] = {}
    unassigned: list[BoardOrder] = []
    for row in rows:
        order = _order(row, now)
        if order["technician_id"] is None:
            unassigned.append(order)
            continue
        day = str(order["window_start"])[:10]
        by_tech.setdefault(str(order["technician_id"]), {}).setdefault(day, []).append(order)
    unwindowed = db.all(f"SELECT {_BOARD} FROM {t.work_order} WHERE window_start_us IS NULL "
                        "AND stage = 'new' ORDER BY created_us, work_order_id LIMIT ?",
                        (MAX_ORDERS,))
    unassigned += [_order(r, now) for r in unwindowed]
    technicians = []
    for tech_id, handle, skills, day_minutes in techs:
        day_rows = []
        for offset in range(days):
            day = (first + timedelta(days=offset)).isoformat()
            orders = by_tech.get(tech_id, {}).get(day, [])
            planned = sum(_minutes(o) for o in orders)
            worked = sum(o["minutes_spent"] or 0 for o in orders)
            day_rows.append({
                "day": day, "capacity_minutes": day_minutes, "planned_minutes": planned,
                "worked_minutes": worked,
                "utilisation": round(planned / day_minutes, 3) if day_minutes else 0.0,
                "orders": orders, "travel": _travel(orders)})
        technicians.append({"technician_id": tech_id, "handle": handle,
                            "skills": orjson.loads(skills), "days": day_rows})
    every = [_order(r, now) for r in rows]
    return {"from": first.isoformat(), "days": days, "now": now.isoformat(),
            "technicians": technicians, "unassigned": unassigned,
            "late": sum(o["late"] for o in every), "overdue": sum(o["overdue"] for o in every)}


def _attention(db: Db, t: Names, now: datetime, limit: int) -> list[BoardOrder]:
    """Open work orders late or overdue at ``now``, oldest window first."""
    open_stages = sorted(d.OPEN_STAGES)
    marks = ",".join("?" * len(open_stages))
    rows = db.all(f"SELECT {_BOARD} FROM {t.work_order} WHERE stage IN ({marks}) "
                  "AND window_start_us < ? ORDER BY window_start_us, work_order_id",
                  (*open_stages, us(now)))
    flagged = [o for o in (_order(r, now) for r in rows) if o["late"] or o["overdue"]]
    return flagged[:limit]


def _detail(db: Db, t: Names, work_order_id: str) -> dict[str, Any] | None:
    row = db.one(f"SELECT {_BOARD}, address, summary, parts, created_us, arrived_recorded_us, "
                 f"finished_us FROM {t.work_order} WHERE work_order_id=?", (work_order_id,))
    if row is None:
        return None
    history = db.all(f"SELECT position, event_id, action, technician_id, occurred_us, "
                     f"recorded_us FROM {t.history} WHERE work_order_id=? ORDER BY position",
                     (work_order_id,))
    return {"row": row, "history": [
        {"position": p, "event_id": e, "action": a, "technician_id": tech,
         "occurred_at": iso(o), "recorded_at": iso(r)} for p, e, a, tech, o, r in history]}


def detail_of(found: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A work order's page: the board row, its personal fields, its history."""
    row = found["row"]
    n = len(_BOARD.split(","))
    return {**_order(row[:n], now), "address": row[n], "summary": row[n + 1],
            "parts": orjson.loads(row[n + 2]) if row[n + 2] else [],
            "created_at": iso(row[n + 3]), "arrival_recorded_at": iso(row[n + 4]),
            "finished_at": iso(row[n + 5]), "history": found["history"]}


class DispatchView(LiveView):
    projection = DispatchProjection()

    def board(self, first: date, days: int, now: datetime) -> dict[str, Any]:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidBoardQueryError(f"days must be 1–{MAX_DAYS}, got {days}")
        return self.run(lambda db, t: _board(db, t, first, days, now))

    def attention(self, now: datetime, limit: int = MAX_ORDERS) -> list[BoardOrder]:
        return self.run(lambda db, t: _attention(db, t, now, limit))

    def work_order(self, work_order_id: str, now: datetime) -> dict[str, Any] | None:
        found = self.run(lambda db, t: _detail(db, t, work_order_id))
        return None if found is None else detail_of(found, now)

    def of_customers(self, customer_ids: Sequence[str], now: datetime, limit: int = 50,
                     after: tuple[int, str] | None = None) -> list[dict[str, Any]]:
        """The work orders of these customers (a merge group), newest first, keyset-paged
        by (created_us, work_order_id)."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            marks = ",".join("?" * len(customer_ids))
            where, params = f"customer_id IN ({marks})", list(customer_ids)
            if after is not None:
                where += " AND (created_us < ? OR (created_us = ? AND work_order_id < ?))"
                params += [after[0], after[0], after[1]]
            rows = db.all(f"SELECT {_BOARD}, address, summary, parts, created_us, "
                          f"arrived_recorded_us, finished_us FROM {t.work_order} WHERE {where} "
                          "ORDER BY created_us DESC, work_order_id DESC LIMIT ?",
                          [*params, limit])
            return [detail_of({"row": r, "history": []}, now) for r in rows]
        return self.run(query)
