"""Demo activity for the analytics figures: inbound touchpoints answered by an outbound
one at deliberately varied delays (minutes, hours, over a weekend, days, never), on the
same or another channel, so channel mix, response times (elapsed and business hours)
and their medians and p90s are non-trivial. Pure (no clock, no I/O), deterministic by
seed; the CSAT answers and complaints come from ``touchstream.demo_service``."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from uuid import UUID

from commands import messages as m

MAX_CUSTOMERS = 60
QUEUES = ("support", "billing", "sales")
AGENTS = ("jo", "mia", "sam", "lee")
#: how long the answer takes: (name, weight); "weekend" is a Friday evening inbound
#: answered on Monday morning (two days elapsed, minutes of business time).
DELAYS = (("minutes", 3), ("hours", 4), ("next-day", 2), ("weekend", 2), ("days", 1),
          ("never", 1))


def _answer_after(rng: random.Random, kind: str, at: datetime) -> tuple[datetime, datetime | None]:
    """(inbound moment, answer moment or None) for a delay kind, from a day ``at``."""
    if kind == "weekend":
        friday = at - timedelta(days=(at.weekday() - 4) % 7)
        inbound = datetime.combine(friday.date(), time(16, rng.randint(30, 59)),
                                   tzinfo=at.tzinfo)
        return inbound, inbound + timedelta(days=3, hours=-8, minutes=rng.randint(0, 90))
    monday = at - timedelta(days=at.weekday())  # a working day, inside office hours
    inbound = datetime.combine((monday + timedelta(days=rng.randint(0, 3))).date(),
                               time(rng.randint(7, 13), rng.randint(0, 59)), tzinfo=at.tzinfo)
    delay = {"minutes": timedelta(minutes=rng.randint(5, 55)),
             "hours": timedelta(hours=rng.uniform(1, 4)),
             "next-day": timedelta(hours=rng.uniform(18, 26)),
             "days": timedelta(days=rng.uniform(3, 9))}.get(kind)
    return inbound, None if delay is None else inbound + delay


def activity_plan(customers: list[UUID], seed: int, until: datetime) -> list[m.Command]:
    """Inbound/outbound episodes for the first customers of the book, in the year to
    ``until`` (every moment before it)."""
    rng = random.Random(f"touchstream-demo-analytics:{seed}")
    out: list[m.Command] = []
    kinds, weights = zip(*DELAYS, strict=True)
    for j, cid in enumerate(customers[:MAX_CUSTOMERS]):
        for k in range(rng.randint(1, 3)):
            key = f"demo-analytics:{seed}:{j}:{k}"
            day = until - timedelta(days=rng.uniform(7, 360))
            inbound, answer = _answer_after(rng, rng.choices(kinds, weights)[0], day)
            if rng.random() < 0.5:
                out.append(m.LogCall(
                    customer_id=cid, call_id=f"{key}:in", direction="inbound",
                    queue=rng.choice(QUEUES), agent=rng.choice(AGENTS), outcome="answered",
                    duration_s=rng.randint(60, 900), wait_s=rng.randint(5, 120),
                    occurred_at=inbound, actor="pbx"))
            else:
                out.append(m.RecordWebForm(
                    customer_id=cid, form_name="contact", submission_id=f"{key}:form",
                    fields={"message": "Please get back to me about my order."},
                    occurred_at=inbound, actor="web-forms"))
            if answer is not None and answer < until:
                out.append(m.LogCall(
                    customer_id=cid, call_id=f"{key}:out", direction="outbound",
                    agent=rng.choice(AGENTS), outcome="answered",
                    duration_s=rng.randint(60, 600), occurred_at=answer,
                    actor="agent:" + rng.choice(AGENTS)))
    return out
