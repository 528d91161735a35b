"""The satisfaction read model: every case opened (complaints marked) and every CSAT
answer, with both times, from the service area's events (``domain.service``).

``fact`` keeps one row per ``CaseOpened`` (kind ``case_opened``, its ``case_kind``) and
per ``CaseSatisfactionRecorded`` (kind ``csat``, its 1–5 score); each carries the
case's channel and its queue at that moment, from the model's own ``case`` table
(``CaseAssigned`` moves a case to another queue). The view sums them per period. The
CSAT comment (personal text) is never kept, so an erasure changes nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import service as s
from projections.activity import day_text
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db

FACT_COLUMNS = ("event_id", "customer_id", "position", "occurred_us", "recorded_us", "day",
                "kind", "case_id", "case_kind", "channel", "queue", "score")


_CASE_EVENTS = (s.CaseOpened, s.CaseAssigned, s.CaseSatisfactionRecorded)


class SatisfactionProjection(Projection):
    name = "satisfaction"
    touches = _CASE_EVENTS
    tables = (
        Table("case", ("case_id",), ("case_id", "case_kind", "channel", "queue")),
        Table("fact", ("event_id",), FACT_COLUMNS),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {case} (case_id TEXT PRIMARY KEY, case_kind TEXT NOT NULL, "
             "channel TEXT NOT NULL, queue TEXT NOT NULL)"),
            ("CREATE TABLE {fact} (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, occurred_us BIGINT NOT NULL, "
             "recorded_us BIGINT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, "
             "case_id TEXT NOT NULL, case_kind TEXT NOT NULL, channel TEXT NOT NULL, "
             "queue TEXT NOT NULL, score INTEGER)"),
            "CREATE INDEX {fact}_day ON {fact} (day)",
            "CREATE INDEX {fact}_position ON {fact} (position)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        # The batch's cases are read once and kept here as its events open and assign
        # them; the rows are written once at the end: new cases, the queues of known cases
        # that moved, the facts. (A SELECT per opened or answered case and an INSERT per
        # fact were a statement per event of this model on PostgreSQL.)
        ids = sorted({e.case_id for _, e in items if isinstance(e, _CASE_EVENTS)})
        known: dict[str, tuple[str, str, str]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            known.update((r[0], (r[1], r[2], r[3])) for r in db.all(
                f"SELECT case_id, case_kind, channel, queue FROM {t.case} "
                f"WHERE case_id IN ({','.join('?' * len(part))})", part))
        cases = dict(known)
        facts: list[tuple[Any, ...]] = []
        for pos, e in items:
            if isinstance(e, s.CaseOpened):
                cases.setdefault(e.case_id, (e.case_kind, e.case_channel, e.queue))
                self._fact(facts, cases, pos, e, "case_opened", None)
            elif isinstance(e, s.CaseAssigned):
                case = cases.get(e.case_id)
                if case is not None:  # else the UPDATE it stood for found no row
                    cases[e.case_id] = (case[0], case[1], e.queue)
            elif isinstance(e, s.CaseSatisfactionRecorded):
                self._fact(facts, cases, pos, e, "csat", e.score)
        db.executemany(f"INSERT INTO {t.case} (case_id, case_kind, channel, queue) "
                       "VALUES (?,?,?,?) ON CONFLICT (case_id) DO NOTHING",
                       [(cid, *row) for cid, row in cases.items() if cid not in known])
        db.executemany(f"UPDATE {t.case} SET queue = ? WHERE case_id = ?",
                       [(row[2], cid) for cid, row in cases.items()
                        if cid in known and known[cid] != row])
        db.executemany(f"INSERT INTO {t.fact} ({', '.join(FACT_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(FACT_COLUMNS))}) "
                       "ON CONFLICT (event_id) DO NOTHING", facts)

    @staticmethod
    def _fact(facts: list[tuple[Any, ...]], cases: dict[str, tuple[str, str, str]], pos: int,
              e: s.CaseOpened | s.CaseSatisfactionRecorded, kind: str,
              score: int | None) -> None:
        case = cases.get(e.case_id)
        if case is None:  # an answer for a case this model never saw opened: not counted
            return
        at = us(e.occurred_at)
        facts.append((str(e.event_id), customer_id(e), pos, at, us(e.recorded_at),
                      day_text(at), kind, e.case_id, case[0], case[1], case[2], score))
