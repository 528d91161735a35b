"""Demo service data: cases met with room to spare, near misses and breaches, waits,
reopens, complaints with compensation and follow-ups, CSAT answers, contracts and
installed products. Pure (no clock, no I/O): commands in recording order, deterministic
by seed; times are placed with the default SLA settings so the outcomes are as named."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from commands import messages as m
from commands import service as sc
from domain.sla import DEFAULT_CONFIG, SlaConfig, add_business_minutes, config_from_mapping

CATEGORIES = ("billing", "delivery", "repair", "account")
CAUSES = ("late-delivery", "damaged-goods", "rude-staff", "wrong-invoice")
QUEUES = ("default", "default", "default", "urgent")
AGENTS = ("jo", "mia", "sam", "lee")
#: outcome → (share of the first-response target, share of the resolution target)
OUTCOMES = {"comfortable": (0.3, 0.5), "near-miss": (0.95, 0.96), "breached": (1.4, 1.6)}
MAX_CASE_CUSTOMERS = 40


def _id(seed: int, *parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, f"touchstream-demo-service:{seed}:" + ":".join(map(str, parts)))


def service_plan(customers: list[UUID], seed: int, until: datetime,
                 config: SlaConfig | None = None) -> list[m.Command]:
    """The demo's service commands for the first customers of the book."""
    config = config or config_from_mapping(DEFAULT_CONFIG)
    rng = random.Random(f"touchstream-demo-service:{seed}")
    out: list[m.Command] = []
    for j, cid in enumerate(customers[:MAX_CASE_CUSTOMERS]):
        def key(*what: object, _j: int = j) -> str:
            return f"demo-service:{seed}:{_j}:" + ":".join(map(str, what))
        product = None
        if j % 3 == 0:
            product = _id(seed, j, "product")
            out.append(sc.RecordInstalledProduct(
                customer_id=cid, product_id=product, product_code=rng.choice(
                    ("boiler-x", "pump-2", "meter-s")), serial_number=f"SN-{seed}-{j:04d}",
                source_key=key("product"), occurred_at=until - timedelta(days=400),
                actor="demo"))
            expired = j % 9 == 0  # every third contract ran out: its cases are flagged
            start = (until - timedelta(days=500 if expired else 200)).date()
            out.append(sc.AddContract(
                customer_id=cid, contract_id=_id(seed, j, "contract"), starts_on=start,
                ends_on=start + timedelta(days=365), sla_policy="standard",
                visits_included=rng.choice((0, 2, 4)), source_key=key("contract"),
                occurred_at=until - timedelta(days=390), actor="demo"))
        for k in range(rng.randint(1, 3)):
            steps = _case(rng, config, cid, _id(seed, j, "case", k), product,
                          lambda *w, _k=k: key("case", _k, *w), until)
            # What would happen after ``until`` has not happened yet: the case is still open.
            late = next((i for i, c in enumerate(steps)
                         if c.occurred_at is not None and c.occurred_at >= until), len(steps))
            out += steps[:late]
    return out


def _case(rng: random.Random, config: SlaConfig, cid: UUID, case: UUID, product: UUID | None,
          key: object, until: datetime) -> list[m.Command]:
    k = key  # type: ignore[assignment]
    queue = rng.choice(QUEUES)
    priority = rng.choice(("urgent", "high", "normal", "normal", "low"))
    complaint = rng.random() < 0.25
    cal = config.calendar_for(queue)
    target = config.policy(None).target(priority)
    start = add_business_minutes(cal, until - timedelta(days=rng.uniform(2, 75)), 1)
    assert start is not None
    start = start.replace(microsecond=0)
    ids = {"customer_id": cid, "case_id": case, "actor": f"agent:{rng.choice(AGENTS)}"}
    cmds: list[m.Command] = [sc.OpenCase(
        **ids, category=rng.choice(CATEGORIES), priority=priority,
        channel=rng.choice(("email", "web", "fax", "email")), queue=queue,
        subject=f"Demo request {case.hex[:6]}", product_id=product,
        case_kind="complaint" if complaint else "request",
        severity=rng.choice(("minor", "major", "critical")) if complaint else None,
        cause_category=rng.choice(CAUSES) if complaint else None,
        source_key=k("open"), occurred_at=start)]  # type: ignore[operator]
    cmds.append(sc.AssignCase(**ids, queue=queue, agent=rng.choice(AGENTS),
                              source_key=k("assign"), occurred_at=start))  # type: ignore[operator]
    outcome = rng.choice(tuple(OUTCOMES) + ("open",))
    if outcome == "open":  # still open: at risk or breached as of today, by age
        return cmds
    fr_share, rt_share = OUTCOMES[outcome]
    responded = add_business_minutes(cal, start, target.first_response_min * fr_share)
    resolved = add_business_minutes(cal, start, target.resolution_min * rt_share)
    assert responded is not None and resolved is not None
    cmds.append(sc.AddCaseNote(**ids, text="We are looking into it.", visibility="shared",
                               source_key=k("reply"), occurred_at=responded))  # type: ignore[operator]
    if complaint:
        cmds.append(sc.OfferCompensation(**ids, amount=rng.choice(("10.00", "25.00", "50.00")),
                                         source_key=k("offer"), occurred_at=responded))  # type: ignore[operator]
        cmds.append(sc.AnswerCompensation(**ids, accepted=rng.random() < 0.7,
                                          source_key=k("answer"), occurred_at=resolved))  # type: ignore[operator]
    cmds.append(sc.ResolveCase(**ids, resolution_code=rng.choice(("fixed", "answered", "refund")),
                               source_key=k("resolve"), occurred_at=resolved))  # type: ignore[operator]
    if complaint:
        cmds.append(sc.ScheduleFollowUp(**ids, on=(resolved + timedelta(days=7)).date(),
                                        source_key=k("follow-up"), occurred_at=resolved))  # type: ignore[operator]
    if rng.random() < 0.15:
        again = resolved + timedelta(days=1)
        cmds.append(sc.ReopenCase(**ids, reason="not fixed after all", source_key=k("reopen"),
                                  occurred_at=again))  # type: ignore[operator]
        cmds.append(sc.ResolveCase(**ids, resolution_code="fixed", source_key=k("resolve2"),
                                   occurred_at=again + timedelta(hours=2)))  # type: ignore[operator]
        resolved = again + timedelta(hours=2)
    if rng.random() < 0.6:
        score = {"comfortable": rng.choice((4, 5)), "near-miss": rng.choice((3, 4)),
                 "breached": rng.choice((1, 2, 3))}[outcome]
        cmds.append(sc.RecordSatisfaction(**ids, score=score, comment="Demo answer",
                                          occurred_at=resolved + timedelta(hours=3)))
    if rng.random() < 0.5:
        cmds.append(sc.CloseCase(**ids, occurred_at=resolved + timedelta(days=3)))
    return cmds
