"""The service read model: every case, each step of it in log order, and suggestions.

``case`` holds one row per case (what the queue and the statistics read),
``step`` every transition and linked touchpoint of a case with the clock
event it means for the SLA (opened, responded, waiting…), ``suggestion`` the
inbound touchpoints of a customer with an open case of the same category (or
of a touchpoint with no category) that no case holds yet — suggested, never
linked by the read side. SLA timers are *not* stored: the view applies
``domain.sla`` to the steps with the settings in force, so a policy change
restates history without a rebuild, and "now" is a query parameter.

``customer`` keeps merges (``projections.customers``): a customer's cases are read
with those of every customer merged into it, so a merged customer's cases follow the
survivor (and come back on an unmerge) without rewriting a case row.

Personal text (subjects, notes, reasons, CSAT comments) is redacted on
``Customer.PersonalDataErased`` so the live model equals a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from domain import service as s
from domain.customer import TOUCHPOINT_EVENTS, Customer
from projections.customers import IDENTITY_EVENTS, apply_identity
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, is_erased, us
from projections.store import Db

#: Channels where the agent speaks to the customer while opening the case.
LIVE_CHANNELS = ("phone", "visit")
_CASE_COLS = ("case_id", "customer_id", "partner_id", "case_kind", "category", "priority",
              "channel", "queue", "agent", "status", "subject", "opened_us", "first_response_us",
              "resolved_us", "closed_us", "reopened", "first_contact", "csat_score",
              "csat_comment", "contract_id", "outside_contract", "sla_policy", "severity",
              "cause_category", "compensation", "compensation_amount", "currency",
              "follow_up_on", "touchpoints", "account_id")


_CASE_EVENTS = frozenset(c for c in s.EVENTS if "case_id" in c.__annotations__)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class ServiceProjection(Projection):
    name = "service"
    touches = (*IDENTITY_EVENTS, Customer.PersonalDataErased, s.CaseOpened, *_CASE_EVENTS,
               *TOUCHPOINT_EVENTS)
    tables = (
        Table("case", ("case_id",), _CASE_COLS),
        Table("step", ("case_id", "event_id"),
              ("case_id", "event_id", "customer_id", "position", "kind", "clock", "occurred_us",
               "actor", "info", "detail", "touchpoint_event_id")),
        Table("partner", ("customer_id",), ("customer_id", "partner_id")),
        Table("customer", ("customer_id",), ("customer_id", "merged_into", "partner_id")),
        Table("suggestion", ("touchpoint_event_id", "case_id"),
              ("touchpoint_event_id", "case_id", "customer_id", "channel", "occurred_us")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {case} (case_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "partner_id TEXT, case_kind TEXT NOT NULL, category TEXT NOT NULL, "
             "priority TEXT NOT NULL, channel TEXT NOT NULL, queue TEXT NOT NULL, agent TEXT, "
             "status TEXT NOT NULL, subject TEXT, opened_us BIGINT NOT NULL, "
             "first_response_us BIGINT, resolved_us BIGINT, closed_us BIGINT, "
             "reopened INTEGER NOT NULL DEFAULT 0, first_contact SMALLINT, csat_score INTEGER, "
             "csat_comment TEXT, contract_id TEXT, outside_contract SMALLINT NOT NULL, "
             "sla_policy TEXT, severity TEXT, cause_category TEXT, compensation TEXT, "
             "compensation_amount TEXT, currency TEXT, follow_up_on TEXT, "
             "touchpoints INTEGER NOT NULL DEFAULT 0, account_id TEXT)"),
            "CREATE INDEX {case}_status ON {case} (status, queue)",
            "CREATE INDEX {case}_customer ON {case} (customer_id)",
            "CREATE INDEX {case}_opened ON {case} (opened_us)",
            ("CREATE TABLE {step} (case_id TEXT NOT NULL, event_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, "
             "clock TEXT, occurred_us BIGINT NOT NULL, actor TEXT, info TEXT NOT NULL, "
             "detail TEXT, touchpoint_event_id TEXT, PRIMARY KEY (case_id, event_id))"),
            "CREATE INDEX {step}_touchpoint ON {step} (touchpoint_event_id)",
            "CREATE INDEX {step}_customer ON {step} (customer_id)",
            "CREATE TABLE {partner} (customer_id TEXT PRIMARY KEY, partner_id TEXT)",
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, merged_into TEXT, "
             "partner_id TEXT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {suggestion} (touchpoint_event_id TEXT NOT NULL, case_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, channel TEXT NOT NULL, occurred_us BIGINT NOT NULL, "
             "PRIMARY KEY (touchpoint_event_id, case_id))"),
            "CREATE INDEX {suggestion}_customer ON {suggestion} (customer_id)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # The cases of the batch's inbound touchpoints' customers, read once for the batch
        # and kept here as the batch opens and moves them (``_Cases``): a suggestion asks
        # no statement per touchpoint (that SELECT was over half of a rebuild's statements
        # here, on PostgreSQL a round trip each).
        cases = _Cases.of(db, t, items)
        steps: list[tuple[Any, ...]] = []  # inserted together: before an erasure, at the end
        for pos, e in items:
            cid = customer_id(e)
            apply_identity(db, t.customer, e)  # merges; the partner table is kept below
            if isinstance(e, Customer.PartnerAssigned):
                db.execute(f"DELETE FROM {t.partner} WHERE customer_id = ?", (cid,))
                db.execute(f"INSERT INTO {t.partner} (customer_id, partner_id) VALUES (?, ?)",
                           (cid, e.partner_id))
                db.execute(f"UPDATE {t.case} SET partner_id = ? WHERE customer_id = ?",
                           (e.partner_id, cid))
            elif isinstance(e, Customer.PersonalDataErased):
                db.execute(f"UPDATE {t.case} SET subject = NULL, csat_comment = NULL "
                           "WHERE customer_id = ?", (cid,))
                _insert_steps(db, t, steps)
                db.execute(f"UPDATE {t.step} SET detail = NULL WHERE customer_id = ?", (cid,))
            elif isinstance(e, s.CaseOpened):
                if self._opened(db, t, steps, pos, cid, e):
                    cases.opened(e.case_id, cid, e.category)
            elif type(e) in _CASE_EVENTS:  # not other areas' events, even with a case_id
                self._case_event(db, t, steps, pos, cid, e)
                status = _STATUS_AFTER.get(type(e))
                if status is not None:
                    cases.moved(e.case_id, status)  # type: ignore[attr-defined]
            elif type(e) in TOUCHPOINT_EVENTS and e.direction == "inbound":
                self._suggest(db, t, cid, e, cases)
        _insert_steps(db, t, steps)

    def _opened(self, db: Db, t: Names, steps: list[tuple[Any, ...]], pos: int, cid: str,
                e: s.CaseOpened) -> bool:
        """True when the case row was made (not there yet)."""
        row = db.one(f"SELECT partner_id FROM {t.partner} WHERE customer_id = ?", (cid,))
        at = us(e.occurred_at)
        live = e.case_channel in LIVE_CHANNELS
        made = db.execute(
            f"INSERT INTO {t.case} (case_id, customer_id, partner_id, case_kind, category, "
            "priority, channel, queue, status, subject, opened_us, first_response_us, "
            "outside_contract, contract_id, sla_policy, severity, cause_category, touchpoints, "
            "account_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (case_id) DO NOTHING RETURNING case_id",
            (e.case_id, cid, row[0] if row else None, e.case_kind, e.category, e.priority,
             e.case_channel, e.queue, "open", e.subject, at, at if live else None,
             int(e.outside_contract), e.contract_id, e.sla_policy, e.severity, e.cause_category,
             1 if e.origin_event_id else 0, e.account_id)).fetchone() is not None
        info = {"priority": e.priority, "channel": e.case_channel, "queue": e.queue,
                "case_kind": e.case_kind, "category": e.category}
        self._step(steps, pos, cid, e, "opened", info, {"subject": e.subject},
                   e.origin_event_id)
        if live:  # the agent answered while opening: the first response
            self._step(steps, pos, cid, e, "responded", {"live": True}, None, None,
                       event_id=f"{e.event_id}:live")
        if e.origin_event_id:
            db.execute(f"DELETE FROM {t.suggestion} WHERE touchpoint_event_id = ?",
                       (e.origin_event_id,))
        return made

    def _case_event(self, db: Db, t: Names, steps: list[tuple[Any, ...]], pos: int, cid: str,
                    e: Any) -> None:
        at = us(e.occurred_at)
        case, sets, params, clock = e.case_id, [], [], None
        info: dict[str, Any] = {}
        detail: dict[str, Any] | None = None
        touch = None
        if isinstance(e, s.CaseAssigned):
            sets, params, info = ["queue = ?", "agent = ?"], [e.queue, e.agent], {
                "queue": e.queue, "agent": e.agent}
        elif isinstance(e, s.CaseReprioritised):
            sets, params, clock, info = ["priority = ?"], [e.priority], "priority", {
                "priority": e.priority}
        elif isinstance(e, s.CaseTouchpointLinked):
            touch = e.touchpoint_event_id
            info = {"channel": e.touchpoint_channel, "direction": e.touchpoint_direction,
                    "automatic": e.automatic}
            sets = ["touchpoints = touchpoints + 1"]
            if e.touchpoint_direction == "outbound":
                clock = "responded"
            db.execute(f"DELETE FROM {t.suggestion} WHERE touchpoint_event_id = ?", (touch,))
        elif isinstance(e, s.CaseNoteAdded):
            info, detail = {"visibility": e.visibility}, {"text": e.text}
            clock = "responded" if e.visibility == "shared" else None
        elif isinstance(e, s.CaseWaitingOnCustomer):
            sets, params, clock, detail = ["status = ?"], ["waiting"], "waiting", {
                "reason": e.reason}
        elif isinstance(e, s.CaseResumed):
            sets, params, clock, info = ["status = ?"], ["open"], "resumed", {
                "automatic": e.automatic}
        elif isinstance(e, s.CaseResolved):
            sets = ["status = ?", "resolved_us = ?", "first_contact = ?"]
            params = ["resolved", at, int(e.first_contact)]
            clock, info = "resolved", {"resolution_code": e.resolution_code,
                                       "first_contact": e.first_contact}
            db.execute(f"DELETE FROM {t.suggestion} WHERE case_id = ?", (case,))
        elif isinstance(e, s.CaseReopened):
            sets, params = ["status = ?", "resolved_us = NULL", "first_contact = NULL",
                            "reopened = reopened + 1"], ["open"]
            clock, detail = "reopened", {"reason": e.reason}
        elif isinstance(e, s.CaseClosed):
            sets, params, clock = ["status = ?", "closed_us = ?"], ["closed", at], "closed"
        elif isinstance(e, s.ComplaintCompensationOffered):
            sets = ["compensation = ?", "compensation_amount = ?", "currency = ?"]
            params, info = ["offered", e.amount, e.currency], {"amount": e.amount,
                                                              "currency": e.currency}
        elif isinstance(e, s.ComplaintCompensationAnswered):
            answer = "accepted" if e.accepted else "declined"
            sets, params, info = ["compensation = ?"], [answer], {"accepted": e.accepted}
        elif isinstance(e, s.ComplaintFollowUpScheduled):
            sets, params = ["follow_up_on = ?"], [e.follow_up_on]
            info = {"on": e.follow_up_on, "channel": e.follow_up_channel}
        elif isinstance(e, s.CaseSatisfactionRecorded):
            sets, params = ["csat_score = ?", "csat_comment = ?"], [e.score, e.comment]
            info, detail = {"score": e.score}, {"comment": e.comment}
        if clock == "responded":
            sets.append("first_response_us = CASE WHEN first_response_us IS NULL OR "
                        "first_response_us > ? THEN ? ELSE first_response_us END")
            params += [at, at]
        if clock == "resolved":  # resolved without a word before: that was the response
            sets.append("first_response_us = COALESCE(first_response_us, ?)")
            params.append(at)
        if sets:
            db.execute(f"UPDATE {t.case} SET {', '.join(sets)} WHERE case_id = ?",
                       (*params, case))
        kind = type(e).__name__
        self._step(steps, pos, cid, e, kind, info, detail, touch, clock=clock)

    def _step(self, steps: list[tuple[Any, ...]], pos: int, cid: str, e: Any, kind: str,
              info: dict[str, Any], detail: dict[str, Any] | None, touch: str | None, *,
              clock: str | None = None, event_id: str | None = None) -> None:
        if kind in ("opened", "responded"):
            kind, clock = ("CaseOpened" if kind == "opened" else "FirstResponseLive"), kind
        if detail is not None and is_erased(e):
            detail = None
        steps.append(
            (e.case_id, event_id or event_id_text(e), cid, pos, kind, clock, us(e.occurred_at),
             e.actor, _json(info), _json(detail) if detail is not None else None, touch))

    def _suggest(self, db: Db, t: Names, cid: str, e: Customer.Event,
                 cases: _Cases) -> None:
        """An inbound touchpoint of a customer with open cases: suggest those of its category
        (all of them when the touchpoint names none)."""
        category = (getattr(e, "fields", None) or {}).get("category") if not is_erased(e) \
            else None
        for case_id in cases.open_of(cid, category):
            db.execute(
                f"INSERT INTO {t.suggestion} (touchpoint_event_id, case_id, customer_id, "
                "channel, occurred_us) VALUES (?,?,?,?,?) "
                "ON CONFLICT (touchpoint_event_id, case_id) DO NOTHING",
                (event_id_text(e), case_id, cid, e.channel, us(e.occurred_at)))


#: the status a case event leaves its case in (as ``_case_event``'s UPDATE sets it)
_STATUS_AFTER: dict[type, str] = {
    s.CaseWaitingOnCustomer: "waiting", s.CaseResumed: "open", s.CaseResolved: "resolved",
    s.CaseReopened: "open", s.CaseClosed: "closed"}
_OPEN = ("open", "waiting")


def _insert_steps(db: Db, t: Names, steps: list[tuple[Any, ...]]) -> None:
    """The steps gathered so far, in order (the first of one key kept), then none."""
    db.executemany(
        f"INSERT INTO {t.step} (case_id, event_id, customer_id, position, kind, clock, "
        "occurred_us, actor, info, detail, touchpoint_event_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (case_id, event_id) DO NOTHING", steps)
    steps.clear()


class _Cases:
    """Every case of some customers (case id → customer, category, status), as the rows
    say at the start of a batch and as the batch's events change them. A case's customer
    and category never change; its status changes only by the events of ``_STATUS_AFTER``.
    Only the customers of the batch's inbound touchpoints are read: the only ones asked."""

    def __init__(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        self.cases: dict[str, list[str]] = {}
        self.by_customer: dict[str, list[str]] = {}
        for case_id, cid, category, status in rows:
            self.opened(case_id, cid, category, status)

    @classmethod
    def of(cls, db: Db, t: Names, items: Sequence[Item]) -> _Cases:
        cids = sorted({customer_id(e) for _, e in items
                       if type(e) in TOUCHPOINT_EVENTS and e.direction == "inbound"})
        rows: list[tuple[str, str, str, str]] = []
        for start in range(0, len(cids), 500):
            part = cids[start:start + 500]
            rows += db.all(f"SELECT case_id, customer_id, category, status FROM {t.case} "
                           f"WHERE customer_id IN ({','.join('?' * len(part))})", part)
        return cls(rows)

    def opened(self, case_id: str, cid: str, category: str, status: str = "open") -> None:
        self.cases[case_id] = [cid, category, status]
        self.by_customer.setdefault(cid, []).append(case_id)

    def moved(self, case_id: str, status: str) -> None:
        case = self.cases.get(case_id)
        if case is not None:  # else not a case of the customers asked
            case[2] = status

    def open_of(self, cid: str, category: str | None) -> list[str]:
        """``cid``'s open or waiting cases (of ``category`` when given), by case id."""
        cases = self.cases
        return sorted(case_id for case_id in self.by_customer.get(cid, ())
                      if cases[case_id][2] in _OPEN
                      and (not category or cases[case_id][1] == category))
