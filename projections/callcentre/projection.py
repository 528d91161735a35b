"""Call-centre figures: every call summarised by ``domain.calls`` from its logged record and
its PBX steps, kept per call with its queue and starting hour; the view adds them up per
queue and hour (or day).

Steps and logs arrive out of order, more than once, and in separate batches, so each
is kept (``part``, no numbers or other personal data: ids, steps, queue, agent, times,
durations) and the calls a batch touched are summarised again from all their parts
after the batch is written: any batch size gives the same rows, so a rebuild equals
the live model. A voided step or log no longer counts (a call left with no part is
removed); a corrected date moves it. A correction's changed *fields* are personal
(erased with the customer) and are not used here, so an erasure changes no figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.calls import OUTCOME_STEP, CallStep, LoggedCall, summarise_call
from domain.customer import Customer
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, event_id_text, moment, us
from projections.store import Db

HOUR_US = 3_600_000_000
_PART = ("call_id", "event_id", "customer_id", "position", "kind", "direction", "step",
         "sequence", "outcome", "occurred_us", "queue", "agent", "duration_s", "wait_s",
         "voided")
_CALL = ("call_id", "direction", "queue", "agent", "started_us", "hour_us", "state",
         "outcome", "wait_s", "talk_s", "parts")


class CallCentreProjection(Projection):
    name = "callcentre"
    tables = (
        Table("part", ("call_id", "event_id"), _PART),
        Table("call", ("call_id",), _CALL),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {part} (call_id TEXT NOT NULL, event_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, "
             "direction TEXT NOT NULL, step TEXT, sequence INTEGER, outcome TEXT, "
             "occurred_us BIGINT NOT NULL, queue TEXT, agent TEXT, duration_s BIGINT, "
             "wait_s BIGINT, voided SMALLINT NOT NULL DEFAULT 0, "
             "PRIMARY KEY (call_id, event_id))"),
            "CREATE INDEX {part}_event ON {part} (event_id)",
            ("CREATE TABLE {call} (call_id TEXT PRIMARY KEY, direction TEXT NOT NULL, "
             "queue TEXT, agent TEXT, started_us BIGINT NOT NULL, hour_us BIGINT NOT NULL, "
             "state TEXT NOT NULL, outcome TEXT, wait_s BIGINT, talk_s BIGINT, "
             "parts INTEGER NOT NULL)"),
            "CREATE INDEX {call}_hour ON {call} (hour_us, queue)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        parts: list[tuple[Any, ...]] = []
        touched: set[str] = set()
        fixes: list[Customer.Event] = []
        for pos, e in items:
            if isinstance(e, Customer.CallStepRecorded):
                duration = e.details.get("duration_s") if e.details else None
                parts.append((e.call_id, event_id_text(e), customer_id(e), pos, "step",
                              e.direction, e.step, e.sequence, None, us(e.occurred_at),
                              e.queue, e.agent, _int(duration), None, 0))
                touched.add(e.call_id)
            elif isinstance(e, Customer.CallLogged):
                parts.append((e.call_id, event_id_text(e), customer_id(e), pos, "log",
                              e.direction, None, None, e.outcome, us(e.occurred_at), e.queue,
                              e.agent, e.duration_s, e.wait_s, 0))
                touched.add(e.call_id)
            elif isinstance(e, Customer.TouchpointVoided | Customer.TouchpointCorrected
                            | Customer.PersonalDataErased):
                fixes.append(e)
        db.executemany(f"INSERT INTO {t.part} ({', '.join(_PART)}) VALUES "
                       f"({','.join('?' * len(_PART))}) "
                       "ON CONFLICT (call_id, event_id) DO NOTHING", parts)
        for fix in fixes:  # after the batch's parts: the touchpoint may be in this batch
            touched |= self._apply_fix(db, t, fix)
        self._summarise(db, t, sorted(touched))

    @staticmethod
    def _apply_fix(db: Db, t: Names, fix: Customer.Event) -> set[str]:
        if isinstance(fix, Customer.PersonalDataErased):
            # A step's reported duration is in its (personal) details: gone once erased,
            # so live forgets it as a rebuild would.
            cid = customer_id(fix)
            calls = {r[0] for r in db.all(f"SELECT call_id FROM {t.part} WHERE customer_id=? "
                                          "AND kind='step'", (cid,))}
            db.execute(f"UPDATE {t.part} SET duration_s=NULL WHERE customer_id=? "
                       "AND kind='step'", (cid,))
            return calls
        if isinstance(fix, Customer.TouchpointVoided):
            target, sets, params = fix.voided_event_id, "voided=1", ()
        elif isinstance(fix, Customer.TouchpointCorrected) and fix.corrected_occurred_at:
            target, sets = fix.corrected_event_id, "occurred_us=?"
            params = (us(fix.corrected_occurred_at),)
        else:
            return set()
        calls = {r[0] for r in db.all(f"SELECT call_id FROM {t.part} WHERE event_id=?",
                                      (target,))}
        db.execute(f"UPDATE {t.part} SET {sets} WHERE event_id=?", (*params, target))
        return calls

    @staticmethod
    def _summarise(db: Db, t: Names, call_ids: Sequence[str]) -> None:
        """Every touched call summarised again from its parts: one query, one delete and one
        insert per chunk of calls (a query per call was most of this model's rebuild time)."""
        for start in range(0, len(call_ids), _CHUNK):
            chunk = call_ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found: dict[str, list[tuple[Any, ...]]] = {}
            for row in db.all(f"SELECT call_id, kind, direction, step, sequence, outcome, "
                              f"occurred_us, queue, agent, duration_s, wait_s FROM {t.part} "
                              f"WHERE call_id IN ({marks}) AND voided=0 ORDER BY position",
                              chunk):
                found.setdefault(row[0], []).append(row[1:])
            # One statement for the chunk (a DELETE per call was a statement per call
            # event in a rebuild: on PostgreSQL a statement each, half of this model's).
            db.execute(f"DELETE FROM {t.call} WHERE call_id IN ({marks})", chunk)
            db.executemany(f"INSERT INTO {t.call} ({', '.join(_CALL)}) VALUES "
                           f"({','.join('?' * len(_CALL))})",
                           [_call_row(c, found[c]) for c in chunk if c in found])


def _call_row(call_id: str, rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The ``call`` row of one call from its parts (in log order)."""
    if len(rows) == 1 and rows[0][0] == "log":
        return _logged_only_row(call_id, rows[0])
    return _summarised_row(call_id, rows)


def _summarised_row(call_id: str, rows: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The ``call`` row from ``domain.calls.summarise_call`` of the parts."""
    steps, logs = [], []
    for kind, _, step, seq, outcome, at, queue, agent, duration, wait in rows:
        if kind == "step":
            details = {"duration_s": str(duration)} if duration is not None else {}
            steps.append(CallStep(call_id=call_id, step=step, sequence=seq,
                                  occurred_at=moment(at), queue=queue, agent=agent,
                                  details=details))
        else:
            logs.append(LoggedCall(call_id=call_id, outcome=outcome, occurred_at=moment(at),
                                   queue=queue, agent=agent, duration_s=duration,
                                   wait_s=wait))
    s = summarise_call(steps, logs)
    started = us(s.started_at)
    talk = s.duration_s if s.outcome == "answered" else None
    direction = rows[-1][1] if rows[-1][1] != "internal" else rows[0][1]
    return (call_id, direction, s.queue, s.agent, started, started - started % HOUR_US,
            s.state, s.outcome, s.wait_s, talk, len(rows))


def _logged_only_row(call_id: str, part: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row ``summarise_call`` gives for a call known only from one logged record (most
    calls: a CDR row and no PBX steps), without building its domain objects (they were
    half of this model's rebuild CPU). ``tests/unit/test_callcentre_rows.py`` holds it
    equal to the general path."""
    _, direction, _, _, outcome, at, queue, agent, duration, wait = part
    talk = duration if outcome == "answered" else None
    return (call_id, direction, queue or None, agent or None, at, at - at % HOUR_US,
            OUTCOME_STEP.get(outcome, "ended"), outcome, wait, talk, 1)


_CHUNK = 500  # call ids per query (SQLite's bound-parameter limit is far above)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
