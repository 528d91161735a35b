"""Demo work data: staff tasks and appointments around the demo's ``until``.

Call-backs on cases, meetings on opportunities (appointments with an end and a
reminder), some done, some cancelled, some rescheduled, some overdue at
``until``, a few waiting unassigned in their queues and one rebalancing move, so
my tasks, my day, the team calendar and the supervisor's view all have
something to show. Pure (no clock, no I/O): commands in recording order,
deterministic by seed, built from the cases and opportunities planned before.
Follow-up tasks are not planned here: the work policies create them
(``touchstream tasks react``) for triggers within their window.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from commands import messages as m
from commands import sales as cs
from commands import service as sc
from commands import work as wc

STAFF = ("jo", "mia", "sam", "lee")
QUEUES = ("billing", "follow-up", "default")
MAX_CASE_TASKS = 40
MAX_MEETINGS = 20
UNASSIGNED = 8


def _id(seed: int, *parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, f"touchstream-demo-work:{seed}:" + ":".join(map(str, parts)))


def work_plan(planned: list[m.Command], seed: int, until: datetime) -> list[m.Command]:
    """The demo's work commands, after everything ``planned`` (cases, opportunities)."""
    out: list[m.Command] = []
    cases = [c for c in planned if isinstance(c, sc.OpenCase)][:MAX_CASE_TASKS]
    opportunities = [c for c in planned if isinstance(c, cs.OpenOpportunity)][:MAX_MEETINGS]

    def key(*what: object) -> str:
        return f"demo-work:{seed}:" + ":".join(map(str, what))

    def created_at(after: datetime | None) -> datetime:
        # an hour after the object, at least ten days before ``until``, always before it
        base = until - timedelta(days=10)
        return min(max(after or base, base) + timedelta(hours=1), until - timedelta(hours=1))

    for case in cases:
        # keyed by the case, not its place: a smaller demo is a prefix of a larger one
        i, rng = case.case_id, random.Random(f"touchstream-demo-work:{seed}:{case.case_id}")
        task = _id(seed, "case", i)
        made = created_at(case.occurred_at)
        due = until + timedelta(hours=rng.randint(-120, 168))
        staff = rng.choice(STAFF)
        out.append(wc.CreateTask(
            customer_id=case.customer_id, task_id=task, task_kind="call",
            title=f"Call back about the {case.category} case", due_at=due,
            reminder_at=due - timedelta(minutes=15), assignee=staff, queue=case.queue,
            link_kind="case", link_id=case.case_id, occurred_at=made, actor=staff,
            source_key=key("case", i)))
        _finish(out, rng, case.customer_id, task, due, made, until, key("case", i))
    for opp in opportunities:
        i = opp.the_opportunity_id()
        rng = random.Random(f"touchstream-demo-work:{seed}:{i}")
        task = _id(seed, "meeting", i)
        made = created_at(opp.occurred_at)
        start = (until + timedelta(days=rng.randint(-6, 10))).replace(
            hour=rng.choice((8, 9, 10, 13, 14, 15)), minute=0, second=0, microsecond=0)
        out.append(wc.CreateTask(
            customer_id=opp.customer_id, task_id=task, task_kind="meeting",
            title=f"Meeting: {opp.title}", due_at=start, ends_at=start + timedelta(hours=1),
            reminder_at=start - timedelta(minutes=30), assignee=rng.choice(STAFF),
            queue="sales", link_kind="opportunity", link_id=UUID(opp.the_opportunity_id()),
            occurred_at=made, actor="sales", source_key=key("meeting", i)))
        _finish(out, rng, opp.customer_id, task, start, made, until, key("meeting", i))
    for i, case in enumerate(cases[:UNASSIGNED]):
        task = _id(seed, "queued", case.case_id)
        out.append(wc.CreateTask(
            customer_id=case.customer_id, task_id=task, task_kind="todo",
            title="Check the customer's payment", due_at=until + timedelta(days=i - 2),
            queue=QUEUES[i % len(QUEUES)], occurred_at=until - timedelta(days=i + 1),
            actor="system", source_key=key("queued", case.case_id)))
        if i == 0:  # a supervisor's rebalancing move
            out.append(wc.MoveWork(customer_id=case.customer_id, item_kind="task",
                                   item_id=task, to_agent="mia", reason="jo is on leave",
                                   occurred_at=until - timedelta(hours=2), actor="lead",
                                   source_key=key("move", case.case_id)))
    return out


def _finish(out: list[m.Command], rng: random.Random, customer: UUID, task: UUID,
            due: datetime, made: datetime, until: datetime, key: str) -> None:
    """Done or cancelled if due before ``until`` (mostly), or moved once."""
    roll = rng.random()
    if due < until and roll < 0.6:
        out.append(wc.CompleteTask(customer_id=customer, task_id=task,
                                   occurred_at=max(due, made), outcome="Done as agreed",
                                   actor="staff", source_key=f"{key}:done"))
    elif roll < 0.7:
        out.append(wc.CancelTask(customer_id=customer, task_id=task, reason="No longer needed",
                                 occurred_at=made + timedelta(minutes=5), actor="staff",
                                 source_key=f"{key}:cancel"))
    elif roll < 0.8:
        later = due + timedelta(days=2)
        out.append(wc.RescheduleTask(customer_id=customer, task_id=task, due_at=later,
                                     reminder_at=later - timedelta(minutes=15),
                                     occurred_at=made + timedelta(minutes=5), actor="staff",
                                     source_key=f"{key}:moved"))
