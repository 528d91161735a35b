"""The work read model: every task and case as a work item, follow-up triggers, turns.

``item`` holds one row per task and per case (queue, staff member, status,
times; a task's title is the only personal text, redacted on
``Customer.PersonalDataErased`` so the live model equals a rebuild);
``trigger`` the events a follow-up rule may react to (a complaint resolved, a
deal won); ``turn`` how many items each routing rule assigned (round-robin's
position). Nothing here is clock-dependent: overdue, "my day" and ages are
judged at read time against a "now" given by the caller. The work policies
(``touchstream.work_policies``) read this model and send commands; nothing is
sent from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain import sales
from domain import service as s
from domain import work as w
from domain.customer import Customer
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, us
from projections.store import Db

_ITEM_COLS = ("item_kind", "item_id", "customer_id", "event_id", "kind", "queue", "agent",
              "status", "channel", "category", "title", "due_us", "ends_us", "reminder_us",
              "opened_us", "done_us", "link_kind", "link_id", "follow_up_rule", "origin_event_id",
              "routed", "routed_rule")
_CASE_STATUS = {s.CaseWaitingOnCustomer: "waiting", s.CaseResumed: "open",
                s.CaseResolved: "resolved", s.CaseReopened: "open", s.CaseClosed: "closed"}


def _us(text: str | None) -> int | None:
    return None if text is None else us(datetime.fromisoformat(text))


class WorkProjection(Projection):
    name = "work"
    touches = (Customer.PersonalDataErased, w.TaskCreated, s.CaseOpened, w.TaskAssigned,
               s.CaseAssigned, w.TaskRescheduled, w.TaskCompleted, w.TaskCancelled,
               *_CASE_STATUS, w.WorkRouted, sales.OpportunityWon)
    tables = (
        Table("item", ("item_kind", "item_id"), _ITEM_COLS),
        Table("trigger", ("event_id",),
              ("event_id", "customer_id", "trigger", "link_id", "occurred_us")),
        Table("turn", ("rule",), ("rule", "assignments")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {item} (item_kind TEXT NOT NULL, item_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, event_id TEXT NOT NULL, kind TEXT NOT NULL, "
             "queue TEXT NOT NULL, agent TEXT, status TEXT NOT NULL, channel TEXT, "
             "category TEXT, title TEXT, due_us BIGINT, ends_us BIGINT, reminder_us BIGINT, "
             "opened_us BIGINT NOT NULL, done_us BIGINT, link_kind TEXT, link_id TEXT, "
             "follow_up_rule TEXT, origin_event_id TEXT, routed SMALLINT NOT NULL DEFAULT 0, "
             "routed_rule TEXT, PRIMARY KEY (item_kind, item_id))"),
            ("CREATE TABLE {trigger} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "trigger TEXT NOT NULL, link_id TEXT NOT NULL, occurred_us BIGINT NOT NULL)"),
            "CREATE TABLE {turn} (rule TEXT PRIMARY KEY, assignments BIGINT NOT NULL)",
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return [
            "CREATE INDEX {item}_agent ON {item} (agent, status, due_us)",
            "CREATE INDEX {item}_due ON {item} (due_us)",
            "CREATE INDEX {item}_queue ON {item} (status, queue, opened_us)",
            "CREATE INDEX {item}_customer ON {item} (customer_id)",
            "CREATE INDEX {item}_origin ON {item} (origin_event_id)",
            "CREATE INDEX {trigger}_occurred ON {trigger} (occurred_us)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            cid = customer_id(e)
            if isinstance(e, Customer.PersonalDataErased):
                db.execute(f"UPDATE {t.item} SET title = NULL WHERE customer_id = ?", (cid,))
            elif isinstance(e, w.TaskCreated):
                self._insert(db, t, cid, e, kind="task", item_id=e.task_id, sub=e.task_kind,
                             queue=e.queue, agent=e.assignee, title=e.title,
                             due=_us(e.due_at), ends=_us(e.ends_at),
                             reminder=_us(e.reminder_at), link=(e.link_kind, e.link_id),
                             follow=(e.rule, e.origin_event_id))
            elif isinstance(e, s.CaseOpened):
                self._insert(db, t, cid, e, kind="case", item_id=e.case_id, sub=e.case_kind,
                             queue=e.queue, agent=None, title=None, channel=e.case_channel,
                             category=e.category)
            elif isinstance(e, (w.TaskAssigned, s.CaseAssigned)):
                item_id, agent = (e.task_id, e.assignee) if isinstance(e, w.TaskAssigned) \
                    else (e.case_id, e.agent)
                db.execute(f"UPDATE {t.item} SET agent = ?, queue = ? WHERE item_kind = ? "
                           "AND item_id = ?", (agent, e.queue, _kind(e), item_id))
            elif isinstance(e, w.TaskRescheduled):
                db.execute(f"UPDATE {t.item} SET due_us = ?, ends_us = ?, reminder_us = ? "
                           "WHERE item_kind = 'task' AND item_id = ?",
                           (_us(e.due_at), _us(e.ends_at), _us(e.reminder_at), e.task_id))
            elif isinstance(e, (w.TaskCompleted, w.TaskCancelled)):
                status = "completed" if isinstance(e, w.TaskCompleted) else "cancelled"
                db.execute(f"UPDATE {t.item} SET status = ?, done_us = ? WHERE "
                           "item_kind = 'task' AND item_id = ?",
                           (status, us(e.occurred_at), e.task_id))
            elif type(e) in _CASE_STATUS:
                self._case_status(db, t, cid, e)
            elif isinstance(e, w.WorkRouted):
                db.execute(f"UPDATE {t.item} SET routed = 1, routed_rule = ? WHERE "
                           "item_kind = ? AND item_id = ?", (e.rule, e.item_kind, e.item_id))
                if e.agent is not None and e.rule is not None:
                    db.execute(f"INSERT INTO {t.turn} (rule, assignments) VALUES (?, 1) "
                               f"ON CONFLICT (rule) DO UPDATE SET assignments = "
                               f"{t.turn}.assignments + 1", (e.rule,))
            elif isinstance(e, sales.OpportunityWon):
                self._trigger(db, t, cid, e, "deal-won", e.opportunity_id)

    @staticmethod
    def _insert(db: Db, t: Names, cid: str, e: Customer.Event, *, kind: str, item_id: str,
                sub: str, queue: str, agent: str | None, title: str | None,
                due: int | None = None, ends: int | None = None, reminder: int | None = None,
                channel: str | None = None, category: str | None = None,
                link: tuple[str | None, str | None] = (None, None),
                follow: tuple[str | None, str | None] = (None, None)) -> None:
        db.execute(
            f"INSERT INTO {t.item} (item_kind, item_id, customer_id, event_id, kind, queue, "
            "agent, status, channel, category, title, due_us, ends_us, reminder_us, opened_us, "
            "link_kind, link_id, follow_up_rule, origin_event_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (item_kind, item_id) DO NOTHING",
            (kind, item_id, cid, event_id_text(e), sub, queue, agent, "open", channel, category,
             title, due, ends, reminder, us(e.occurred_at), link[0], link[1], follow[0],
             follow[1]))

    def _case_status(self, db: Db, t: Names, cid: str, e: Customer.Event) -> None:
        status = _CASE_STATUS[type(e)]
        case_id = e.case_id  # type: ignore[attr-defined]
        done = us(e.occurred_at) if status in ("resolved", "closed") else None
        db.execute(f"UPDATE {t.item} SET status = ?, done_us = ? WHERE item_kind = 'case' "
                   "AND item_id = ?", (status, done, case_id))
        if isinstance(e, s.CaseResolved):
            row = db.one(f"SELECT kind FROM {t.item} WHERE item_kind = 'case' AND item_id = ?",
                         (case_id,))
            if row is not None and row[0] == "complaint":
                self._trigger(db, t, cid, e, "complaint-resolved", case_id)

    @staticmethod
    def _trigger(db: Db, t: Names, cid: str, e: Customer.Event, trigger: str,
                 link_id: str) -> None:
        db.execute(f"INSERT INTO {t.trigger} (event_id, customer_id, trigger, link_id, "
                   "occurred_us) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
                   (event_id_text(e), cid, trigger, link_id, us(e.occurred_at)))


def _kind(e: Customer.Event) -> str:
    return "task" if isinstance(e, w.TaskAssigned) else "case"
