"""Reading the work read model: my tasks, my day, the team calendar, a staff member's
feed, the supervisor's queues and loads, and what the work policies still have to do.

"Now" is always a parameter (overdue, ages): nothing clock-dependent is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from projections.engine import Names
from projections.events import iso, us
from projections.store import Db
from projections.views import LiveView
from projections.work.projection import WorkProjection

OPEN = ("open", "waiting")  # a case waiting on the customer is still someone's work
_TASK = ("item_id, customer_id, kind, title, due_us, ends_us, reminder_us, status, queue, "
         "agent, link_kind, link_id, follow_up_rule, event_id, done_us")
MAX_ROWS = 1000


def _task(r: Sequence[Any], now_us: int | None = None) -> dict[str, Any]:
    row = {"task_id": r[0], "customer_id": r[1], "task_kind": r[2], "title": r[3],
           "due_at": iso(r[4]), "ends_at": iso(r[5]), "reminder_at": iso(r[6]),
           "status": r[7], "queue": r[8], "assignee": r[9], "link_kind": r[10],
           "link_id": r[11], "follow_up_rule": r[12], "event_id": r[13], "done_at": iso(r[14])}
    if now_us is not None:
        row["overdue"] = r[7] == "open" and r[4] is not None and r[4] < now_us
    return row


class WorkView(LiveView):
    projection = WorkProjection()

    # -- staff --------------------------------------------------------------------
    def my_tasks(self, staff: str, now: datetime, *, limit: int = 100,
                 offset: int = 0) -> dict[str, Any]:
        """A staff member's open tasks: overdue first (oldest due first), then by due time."""
        now_us = us(now)

        def query(db: Db, t: Names) -> dict[str, Any]:
            where = "item_kind = 'task' AND agent = ? AND status = 'open'"
            total = int(db.scalar(f"SELECT COUNT(*) FROM {t.item} WHERE {where}", (staff,)) or 0)
            overdue = int(db.scalar(f"SELECT COUNT(*) FROM {t.item} WHERE {where} AND "
                                    "due_us < ?", (staff, now_us)) or 0)
            rows = db.all(f"SELECT {_TASK} FROM {t.item} WHERE {where} ORDER BY "
                          "CASE WHEN due_us < ? THEN 0 ELSE 1 END, due_us, item_id "
                          "LIMIT ? OFFSET ?", (staff, now_us, limit, offset))
            return {"staff": staff, "now": now.isoformat(), "total": total, "overdue": overdue,
                    "tasks": [_task(r, now_us) for r in rows]}
        return self.run(query)

    def day(self, staff: str, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
        """A staff member's day: open tasks overdue before it first, then the day's tasks
        and appointments (done ones too) in time order."""
        now_us, start_us, end_us = us(now), us(start), us(end)

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(
                f"SELECT {_TASK} FROM {t.item} WHERE item_kind = 'task' AND agent = ? AND ("
                "(status = 'open' AND due_us < ?) OR (status <> 'cancelled' AND due_us >= ? "
                "AND due_us < ?)) ORDER BY CASE WHEN due_us < ? THEN 0 ELSE 1 END, due_us, "
                f"item_id LIMIT {MAX_ROWS}",
                (staff, start_us, start_us, end_us, start_us))
            return [_task(r, now_us) for r in rows]
        return {"staff": staff, "from": start.isoformat(), "to": end.isoformat(),
                "now": now.isoformat(), "tasks": self.run(query)}

    def calendar(self, start: datetime, end: datetime, staff: Sequence[str] | None,
                 now: datetime) -> dict[str, Any]:
        """Tasks and appointments due in [start, end) per staff member (cancelled left out);
        ``staff`` None: everyone's, unassigned ones under null."""
        now_us = us(now)

        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            where, params = ["item_kind = 'task'", "status <> 'cancelled'", "due_us >= ?",
                             "due_us < ?"], [us(start), us(end)]
            if staff is not None:
                if not staff:
                    return []
                where.append(f"agent IN ({', '.join('?' for _ in staff)})")
                params.extend(staff)
            rows = db.all(f"SELECT {_TASK} FROM {t.item} WHERE {' AND '.join(where)} "
                          f"ORDER BY agent, due_us, item_id LIMIT {MAX_ROWS + 1}", params)
            return [_task(r, now_us) for r in rows]

        rows = self.run(query)
        people: dict[str | None, list[dict[str, Any]]] = {}
        for r in rows[:MAX_ROWS]:
            people.setdefault(r["assignee"], []).append(r)
        return {"from": start.isoformat(), "to": end.isoformat(), "now": now.isoformat(),
                "truncated": len(rows) > MAX_ROWS,
                "staff": [{"staff": k, "tasks": v} for k, v in
                          sorted(people.items(), key=lambda kv: kv[0] or "")]}

    def feed(self, staff: str, since: datetime) -> list[dict[str, Any]]:
        """A staff member's tasks due since ``since`` (every status: a calendar app shows a
        cancelled one as cancelled), for the iCalendar feed."""
        def query(db: Db, t: Names) -> list[dict[str, Any]]:
            rows = db.all(f"SELECT {_TASK} FROM {t.item} WHERE item_kind = 'task' AND "
                          f"agent = ? AND due_us >= ? ORDER BY due_us, item_id LIMIT {MAX_ROWS}",
                          (staff, us(since)))
            return [_task(r) for r in rows]
        return self.run(query)

    # -- supervisor -----------------------------------------------------------------
    def supervisor(self, now: datetime, *, queue: str | None = None, limit: int = 50,
                   offset: int = 0) -> dict[str, Any]:
        """Per queue: open and unassigned items and the oldest's age; per agent: load and
        the oldest item's age; the unassigned items, oldest first."""
        now_us = us(now)

        def query(db: Db, t: Names) -> dict[str, Any]:
            where, params = ["status IN ('open', 'waiting')"], []
            if queue is not None:
                where.append("queue = ?")
                params.append(queue)
            cond = " AND ".join(where)
            queues = db.all(
                f"SELECT queue, COUNT(*), SUM(CASE WHEN agent IS NULL THEN 1 ELSE 0 END), "
                f"MIN(opened_us), MIN(CASE WHEN agent IS NULL THEN opened_us END) FROM {t.item} "
                f"WHERE {cond} GROUP BY queue ORDER BY queue", params)
            agents = db.all(
                f"SELECT agent, COUNT(*), SUM(CASE WHEN item_kind = 'task' THEN 1 ELSE 0 END), "
                f"MIN(opened_us), SUM(CASE WHEN item_kind = 'task' AND due_us < ? THEN 1 "
                f"ELSE 0 END) FROM {t.item} WHERE {cond} AND agent IS NOT NULL "
                "GROUP BY agent ORDER BY agent", [now_us, *params])
            waiting = db.all(
                f"SELECT item_kind, item_id, customer_id, queue, kind, channel, category, "
                f"opened_us, due_us FROM {t.item} WHERE {cond} AND agent IS NULL "
                "ORDER BY opened_us, item_kind, item_id LIMIT ? OFFSET ?",
                [*params, limit, offset])
            return {
                "now": now.isoformat(),
                "queues": [{"queue": q, "open": n, "unassigned": int(u or 0),
                            "oldest_age_s": _age(now_us, o), "oldest_unassigned_age_s":
                            _age(now_us, ou)} for q, n, u, o, ou in queues],
                "agents": [{"agent": a, "load": n, "tasks": int(tk or 0), "cases": n - int(tk or 0),
                            "overdue_tasks": int(od or 0), "oldest_age_s": _age(now_us, o)}
                           for a, n, tk, o, od in agents],
                "waiting": [{"item_kind": k, "item_id": i, "customer_id": c, "queue": q,
                             "kind": kd, "channel": ch, "category": cat, "opened_at": iso(o),
                             "due_at": iso(d), "age_s": _age(now_us, o)}
                            for k, i, c, q, kd, ch, cat, o, d in waiting],
            }
        return self.run(query)

    # -- what the work policies read --------------------------------------------------
    def loads(self) -> dict[str, int]:
        """Open items per staff member."""
        return dict(self.run(lambda db, t: db.all(
            f"SELECT agent, COUNT(*) FROM {t.item} WHERE status IN ('open', 'waiting') AND "
            "agent IS NOT NULL GROUP BY agent")))

    def turns(self) -> dict[str, int]:
        return {r: int(n) for r, n in self.run(lambda db, t: db.all(
            f"SELECT rule, assignments FROM {t.turn}"))}

    def unrouted(self, limit: int = 100) -> list[dict[str, Any]]:
        """Open items nobody was assigned and the rules have not seen, oldest first."""
        rows = self.run(lambda db, t: db.all(
            f"SELECT item_kind, item_id, customer_id, channel, category FROM {t.item} "
            "WHERE status = 'open' AND agent IS NULL AND routed = 0 "
            "ORDER BY opened_us, item_kind, item_id LIMIT ?", (limit,)))
        return [{"item_kind": k, "item_id": i, "customer_id": c, "channel": ch, "category": cat}
                for k, i, c, ch, cat in rows]

    def pending_follow_ups(self, trigger: str, rule: str, since: datetime,
                           limit: int = 100) -> list[dict[str, Any]]:
        """Triggers of ``trigger`` since ``since`` that ``rule`` has no task for yet."""
        rows = self.run(lambda db, t: db.all(
            f"SELECT g.event_id, g.customer_id, g.link_id, g.occurred_us FROM {t.trigger} g "
            "WHERE g.trigger = ? AND g.occurred_us >= ? AND NOT EXISTS (SELECT 1 FROM "
            f"{t.item} i WHERE i.origin_event_id = g.event_id AND i.follow_up_rule = ?) "
            "ORDER BY g.occurred_us, g.event_id LIMIT ?", (trigger, us(since), rule, limit)))
        return [{"event_id": e, "customer_id": c, "link_id": link, "occurred_at": iso(o)}
                for e, c, link, o in rows]


def _age(now_us: int, then_us: int | None) -> int | None:
    return None if then_us is None else max(0, (now_us - int(then_us)) // 1_000_000)
