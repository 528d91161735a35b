"""Reading the service read model: the queue, a case in detail, statistics.

SLA timers are computed here, at read time, by ``domain.sla`` over the stored
steps with the policies and calendars given to the view: never stored, so a
changed policy restates every case, and "now" (``as_of``) is a parameter.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

import orjson

from domain.sla import ClockEvent, SlaConfig, Timer, Timers, case_state, next_deadline, sla
from domain.sla import state_at as timer_state
from projections.customers import group
from projections.engine import Names
from projections.events import iso
from projections.service.projection import ServiceProjection
from projections.store import Db, ReadStore
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIODS = ("day", "week", "month")
MAX_STATS_CASES = 50_000
OPEN = ("open", "waiting")


def at(us_value: int) -> datetime:
    return EPOCH + timedelta(microseconds=us_value)


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


class ServiceView(LiveView):
    projection = ServiceProjection()

    def __init__(self, store: ReadStore, config: SlaConfig) -> None:
        super().__init__(store)
        self.config = config

    # -- SLA over stored steps ------------------------------------------------
    def timers(self, case: dict[str, Any], clocks: Iterable[ClockEvent]) -> Timers:
        return sla(self.config.policy(case["sla_policy"]),
                   self.config.calendar_for(case["queue"]), clocks)

    def queue(self, as_of: datetime, *, queue: str | None = None, agent: str | None = None,
              priority: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Open cases by next deadline (breached first), and each agent's workload."""
        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], dict[str, list[ClockEvent]]]:
            where, params = ["status IN ('open', 'waiting')"], []
            for column, value in (("queue", queue), ("agent", agent), ("priority", priority)):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            cases = _cases(db, t, " AND ".join(where), params)
            return cases, _clocks(db, t, [c["case_id"] for c in cases])

        cases, clocks = self.run(query)
        rows = []
        for c in cases:
            timers = self.timers(c, clocks.get(c["case_id"], []))
            deadline = next_deadline(timers, as_of)
            rows.append(_queue_row(c, timers, as_of, deadline))
        order = {"breached": 0, "at_risk": 1, "ok": 2}
        rows.sort(key=lambda r: (order[r["sla_state"]], r["next_deadline"] or "9999",
                                 r["opened_at"], r["case_id"]))
        workload: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            w = workload[r["agent"] or ""]
            w["open"] += 1
            w[r["sla_state"]] += 1
        return {
            "as_of": as_of.isoformat(), "total": len(rows),
            "items": rows[offset:offset + limit],
            "workload": [{"agent": a or None, "open": w["open"], "at_risk": w["at_risk"],
                          "breached": w["breached"]} for a, w in sorted(workload.items())],
        }

    def case(self, case_id: str, as_of: datetime) -> dict[str, Any] | None:
        """A case with every step in order and its SLA timers as of ``as_of``."""
        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
            cases = _cases(db, t, "case_id = ?", [case_id])
            steps = db.all(f"SELECT event_id, position, kind, clock, occurred_us, actor, info, "
                           f"detail, touchpoint_event_id FROM {t.step} WHERE case_id = ? "
                           "ORDER BY position, occurred_us, event_id", (case_id,))
            return cases, steps

        cases, steps = self.run(query)
        if not cases:
            return None
        c = cases[0]
        clocks = [_clock(s[3], s[4], s[6]) for s in steps if s[3]]
        timers = self.timers(c, clocks)
        return {
            **_public_case(c), "sla_state": case_state(timers, as_of),
            "next_deadline": iso_or_none(next_deadline(timers, as_of)),
            "timers": [_timer(tm, as_of) for tm in timers.all()], "as_of": as_of.isoformat(),
            "steps": [{"event_id": s[0], "position": s[1], "kind": s[2], "clock": s[3],
                       "occurred_at": iso(s[4]), "actor": s[5], **orjson.loads(s[6]),
                       **(orjson.loads(s[7]) if s[7] else {}),
                       "touchpoint_event_id": s[8]} for s in steps],
        }

    def customer_cases(self, customer_id: str) -> dict[str, Any]:
        """A customer's cases (newest first) and the touchpoints suggested for open ones,
        with those of every customer merged into it (``customer_id`` is the root)."""
        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
            members = group(db, t.customer, customer_id)
            marks = ",".join("?" * len(members))
            cases = _cases(db, t, f"customer_id IN ({marks})", members)
            sugg = db.all(f"SELECT touchpoint_event_id, case_id, channel, occurred_us FROM "
                          f"{t.suggestion} WHERE customer_id IN ({marks}) ORDER BY "
                          "occurred_us, touchpoint_event_id, case_id", members)
            return cases, sugg

        cases, sugg = self.run(query)
        cases.sort(key=lambda c: (-c["opened_us"], c["case_id"]))
        return {"customer_id": customer_id, "cases": [_public_case(c) for c in cases],
                "suggestions": [{"touchpoint_event_id": s[0], "case_id": s[1], "channel": s[2],
                                 "occurred_at": iso(s[3])} for s in sugg]}

    def history(self, start: datetime, end: datetime) -> list[tuple[dict[str, Any],
                                                                    list[ClockEvent]]]:
        """Every case opened in [start, end) with its clock events (for what-if replays)."""
        def query(db: Db, t: Names) -> list[tuple[dict[str, Any], list[ClockEvent]]]:
            cases = _cases(db, t, "opened_us >= ? AND opened_us < ?", [_us(start), _us(end)])
            clocks = _clocks(db, t, [c["case_id"] for c in cases])
            return [(c, clocks.get(c["case_id"], [])) for c in cases]

        return self.run(query)

    def partner_of(self, case_id: str) -> tuple[str, str | None] | None:
        """(customer id, partner id) of a case, for scoping."""
        row = self.run(lambda db, t: db.one(
            f"SELECT customer_id, partner_id FROM {t.case} WHERE case_id = ?", (case_id,)))
        return None if row is None else (row[0], row[1])

    def statistics(self, start: datetime, end: datetime, period: str,
                   as_of: datetime) -> dict[str, Any]:
        """Figures of the cases opened in [start, end) per period."""
        if period not in PERIODS:
            raise InvalidQueryError(f"period must be one of {', '.join(PERIODS)}")
        if end <= start:
            raise InvalidQueryError("'to' must be after 'from'")

        def query(db: Db, t: Names) -> tuple[list[dict[str, Any]], dict[str, list[ClockEvent]]]:
            cases = _cases(db, t, "opened_us >= ? AND opened_us < ?", [_us(start), _us(end)],
                           limit=MAX_STATS_CASES + 1)
            if len(cases) > MAX_STATS_CASES:
                raise InvalidQueryError(f"more than {MAX_STATS_CASES} cases: narrow the range")
            return cases, _clocks(db, t, [c["case_id"] for c in cases])

        cases, clocks = self.run(query)
        buckets: dict[str, list[tuple[dict[str, Any], Timers]]] = defaultdict(list)
        for c in cases:
            buckets[bucket(at(c["opened_us"]), period)].append(
                (c, self.timers(c, clocks.get(c["case_id"], []))))
        return {"period": period, "from": start.isoformat(), "to": end.isoformat(),
                "as_of": as_of.isoformat(),
                "items": [figures(k, v, as_of) for k, v in sorted(buckets.items())]}


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def bucket(moment: datetime, period: str) -> str:
    day = moment.astimezone(UTC).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures(key: str, rows: list[tuple[dict[str, Any], Timers]], as_of: datetime) -> dict[
        str, Any]:
    """Volumes, response and resolution times (business minutes), rates, CSAT, complaints."""
    frt = [t.first_response.used_min for _, t in rows if t.first_response.met_at]
    rt = [t.resolution.used_min for c, t in rows if t.resolution.met_at]
    resolved = [c for c, _ in rows if c["status"] in ("resolved", "closed")]
    breached = sum(1 for _, t in rows if case_state(t, as_of) == "breached")
    csat = [c["csat_score"] for c, _ in rows if c["csat_score"] is not None]
    complaints = Counter(c["cause_category"] or "unspecified" for c, _ in rows
                         if c["case_kind"] == "complaint")
    rate = (lambda n, d: round(n / d, 4) if d else None)
    return {
        "period": key, "cases": len(rows),
        "by_channel": dict(sorted(Counter(c["channel"] for c, _ in rows).items())),
        "first_response_min": {"median": median(frt) if frt else None,
                               "p90": percentile(frt, 0.9)},
        "resolution_min": {"median": median(rt) if rt else None, "p90": percentile(rt, 0.9)},
        "fcr_rate": rate(sum(1 for c in resolved if c["first_contact"]), len(resolved)),
        "breach_rate": rate(breached, len(rows)),
        "reopen_rate": rate(sum(1 for c, _ in rows if c["reopened"]), len(rows)),
        "csat": {"answers": len(csat), "average": round(sum(csat) / len(csat), 2) if csat
                 else None},
        "complaints_by_cause": dict(sorted(complaints.items())),
    }


_COLS = ("case_id", "customer_id", "partner_id", "case_kind", "category", "priority", "channel",
         "queue", "agent", "status", "subject", "opened_us", "first_response_us", "resolved_us",
         "closed_us", "reopened", "first_contact", "csat_score", "csat_comment", "contract_id",
         "outside_contract", "sla_policy", "severity", "cause_category", "compensation",
         "compensation_amount", "currency", "follow_up_on", "touchpoints", "account_id")


def _cases(db: Db, t: Names, where: str, params: list[Any], limit: int | None = None) -> list[
        dict[str, Any]]:
    sql = f"SELECT {', '.join(_COLS)} FROM {t.case} WHERE {where} ORDER BY opened_us, case_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [dict(zip(_COLS, row, strict=True)) for row in db.all(sql, params)]


def _clock(kind: str, occurred_us: int, info: str) -> ClockEvent:
    return ClockEvent(at(occurred_us), kind, orjson.loads(info).get("priority")
                      if kind in ("opened", "priority") else None)


def _clocks(db: Db, t: Names, case_ids: list[str]) -> dict[str, list[ClockEvent]]:
    out: dict[str, list[ClockEvent]] = defaultdict(list)
    for i in range(0, len(case_ids), 500):
        chunk = case_ids[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        for case_id, kind, occurred, info in db.all(
                f"SELECT case_id, clock, occurred_us, info FROM {t.step} WHERE clock IS NOT NULL "
                f"AND case_id IN ({marks}) ORDER BY position, event_id", chunk):
            out[case_id].append(_clock(kind, occurred, info))
    return out


def _public_case(c: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in c.items() if not k.endswith("_us")}
    for k in ("opened", "first_response", "resolved", "closed"):
        out[f"{k}_at"] = iso(c[f"{k}_us"]) if c[f"{k}_us"] is not None else None
    out["outside_contract"] = bool(c["outside_contract"])
    out["first_contact"] = None if c["first_contact"] is None else bool(c["first_contact"])
    return out


def _timer(tm: Timer, as_of: datetime) -> dict[str, Any]:
    return {"name": tm.name, "target_min": tm.target_min, "due_at": iso_or_none(tm.due_at),
            "warn_at": iso_or_none(tm.warn_at), "met_at": iso_or_none(tm.met_at),
            "used_min": tm.used_min, "state": timer_state(tm, as_of)}


def _queue_row(c: dict[str, Any], timers: Timers, as_of: datetime,
               deadline: datetime | None) -> dict[str, Any]:
    opened = at(c["opened_us"])
    return {"case_id": c["case_id"], "customer_id": c["customer_id"], "queue": c["queue"],
            "agent": c["agent"], "priority": timers.priority, "category": c["category"],
            "case_kind": c["case_kind"], "status": c["status"], "channel": c["channel"],
            "opened_at": opened.isoformat(),
            "age_min": max(0, int((as_of - opened).total_seconds() // 60)),
            "sla_state": case_state(timers, as_of), "next_deadline": iso_or_none(deadline),
            "first_response": timer_state(timers.first_response, as_of),
            "resolution": timer_state(timers.resolution, as_of),
            "outside_contract": bool(c["outside_contract"])}
