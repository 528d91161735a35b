"""Where each read model stands: position, lag in events and seconds, rate."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from projections.engine import generations
from projections.faults import faults
from projections.store import Db


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    generation: int
    live: bool
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    rate_per_s: float | None
    events_applied: int
    updated_at: float | None
    # Set when the generation stopped at an event it cannot decode or apply.
    stopped_at: int | None = None
    stopped_event: str | None = None
    stopped_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(db: Db, head: int, *, lag_events: Callable[[int, int], int] | None = None,
           recorded_after: Callable[[int], int | None] | None = None,
           now: float | None = None) -> list[ProjectionStatus]:
    """Every generation of every read model (live ones and rebuilds in progress).

    ``lag_events(position, head)`` counts the log entries not yet applied
    (default: the difference of positions, exact on SQLite, near on
    PostgreSQL); ``recorded_after(position)`` gives the recording time (µs)
    of the oldest entry not yet applied, for the lag in seconds.
    """
    now = time.time() if now is None else now
    out = []
    try:
        rows = generations(db)
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
        return []  # nothing was ever built
    stopped = faults(db)
    for g in rows:
        fault = stopped.get((g.name, g.generation))
        behind = max(0, head - g.position)
        if lag_events is not None and behind:
            behind = lag_events(g.position, head)
        seconds = 0.0
        if behind and recorded_after is not None:
            oldest = recorded_after(g.position)
            if oldest is not None:
                seconds = max(0.0, now - oldest / 1e6)
        out.append(ProjectionStatus(
            name=g.name, generation=g.generation, live=g.live, position=g.position, head=head,
            lag_events=behind, lag_seconds=round(seconds, 3),
            rate_per_s=round(g.rate, 1) if g.rate else None, events_applied=g.events,
            updated_at=g.updated_at,
            stopped_at=fault.position if fault else None,
            stopped_event=fault.event if fault else None,
            stopped_reason=fault.reason if fault else None,
        ))
    return out
