"""Stopped projections: which event stopped a read model's generation, and why.

A generation that meets an event it cannot decode or apply stops *at* that
event: its position stays just before it, one row here says where, which
event and why, and the other generations go on. The row stays until the
generation is replaced (``projections rebuild`` after the store is repaired),
so ``projections status`` and ``/ready`` show it instead of a silently growing lag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from projections.store import Db

FAULTS = "ts_projection_fault"
FAULTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {FAULTS} ("
    "name TEXT NOT NULL, generation INTEGER NOT NULL, position BIGINT NOT NULL, "
    "event TEXT NOT NULL, reason TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (name, generation))"
)


class DamagedEventError(Exception):
    """Raised when a stored event cannot be decoded: the event store is damaged."""

    def __init__(self, position: int, event: str, reason: str) -> None:
        super().__init__(f"event at position {position} ({event}) cannot be decoded: {reason}")
        self.position = position
        self.event = event
        self.reason = reason


@dataclass(frozen=True)
class Fault:
    name: str
    generation: int
    position: int  # the log position of the event that stopped it
    event: str  # topic, stream and version of that event
    reason: str
    at: float


def record_fault(db: Db, fault: Fault) -> None:
    """Inside the caller's write transaction (the tracking row is updated there too)."""
    db.execute(FAULTS_DDL)
    db.execute(f"DELETE FROM {FAULTS} WHERE name=? AND generation=?",
               (fault.name, fault.generation))
    db.execute(
        f"INSERT INTO {FAULTS} (name, generation, position, event, reason, at) "
        "VALUES (?,?,?,?,?,?)",
        (fault.name, fault.generation, fault.position, fault.event, fault.reason[:2000],
         fault.at),
    )


def faults(db: Db) -> dict[tuple[str, int], Fault]:
    """Every recorded fault by (name, generation); empty when none was ever recorded."""
    exists = db.scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?"
        if db.dialect == "sqlite" else "SELECT COUNT(*) FROM pg_tables WHERE tablename=?",
        (FAULTS,),
    )
    if not exists:
        return {}
    rows = db.all(f"SELECT name, generation, position, event, reason, at FROM {FAULTS}")
    return {(r[0], int(r[1])): Fault(r[0], int(r[1]), int(r[2]), r[3], r[4], float(r[5]))
            for r in rows}


def new_fault(name: str, generation: int, position: int, event: str, reason: str) -> Fault:
    return Fault(name, generation, position, event, reason, time.time())
