"""What-if for SLA policies: past cases under the current and a new policy, side by side.

The cases are replayed from the event log into a scratch copy of the service read
model (a temporary SQLite file, deleted afterwards), so no live read model is
read or touched; both policies are then applied by the same pure function
(``domain.sla``) at the same ``as_of``. Nothing is written to the event store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

from domain.sla import ClockEvent, SlaConfig, Timer, case_state, sla, state_at
from projections import registry
from projections.engine import EventSource, Worker
from projections.service.view import ServiceView
from projections.store import ReadStore


@dataclass(frozen=True)
class PolicyFigures:
    """How one policy judges the cases."""

    cases: int
    breached: int
    at_risk: int
    first_response_breached: int
    resolution_breached: int
    first_response_median_min: float | None
    resolution_median_min: float | None


@dataclass(frozen=True)
class WhatIf:
    start: datetime
    end: datetime
    as_of: datetime
    current: PolicyFigures
    new: PolicyFigures
    changed: list[dict[str, Any]]  # cases whose state differs: id, current, new


def judge(cases: Iterable[tuple[dict[str, Any], list[ClockEvent]]], config: SlaConfig,
          as_of: datetime) -> tuple[PolicyFigures, dict[str, str]]:
    """The figures of ``cases`` under ``config`` at ``as_of``, and each case's state."""
    states: dict[str, str] = {}
    fr_met: list[float] = []
    rt_met: list[float] = []
    fr_breached = rt_breached = 0
    for case, clocks in cases:
        timers = sla(config.policy(case["sla_policy"]), config.calendar_for(case["queue"]),
                     clocks)
        states[case["case_id"]] = case_state(timers, as_of)
        fr, rt = timers.first_response, timers.resolution
        fr_met += [fr.used_min] if fr.met_at is not None and fr.met_at <= as_of else []
        rt_met += [rt.used_min] if rt.met_at is not None and rt.met_at <= as_of else []
        fr_breached += _breached(fr, as_of)
        rt_breached += _breached(rt, as_of)
    values = list(states.values())
    return PolicyFigures(
        cases=len(values), breached=values.count("breached"), at_risk=values.count("at_risk"),
        first_response_breached=fr_breached, resolution_breached=rt_breached,
        first_response_median_min=median(fr_met) if fr_met else None,
        resolution_median_min=median(rt_met) if rt_met else None), states


def _breached(timer: Timer, as_of: datetime) -> int:
    return int(state_at(timer, as_of) == "breached")


def what_if(source: EventSource, current: SlaConfig, new: SlaConfig, start: datetime,
            end: datetime, as_of: datetime) -> WhatIf:
    """Replay the service history into a scratch read model and judge it twice."""
    with tempfile.TemporaryDirectory(prefix="touchstream-whatif-") as scratch:
        store = ReadStore(f"sqlite:///{Path(scratch) / 'service.db'}", access_log=False)
        db = store.connect()
        try:
            Worker(db, source, [(registry.get("service"), None)]).catch_up()
        finally:
            db.close()
        try:
            cases = ServiceView(store, current).history(start, end)
        finally:
            store.reset_local()
    now, now_states = judge(cases, current, as_of)
    then, new_states = judge(cases, new, as_of)
    changed = [{"case_id": k, "current": v, "new": new_states[k]}
               for k, v in sorted(now_states.items()) if new_states[k] != v]
    return WhatIf(start, end, as_of, now, then, changed)
