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

from domain import service as s
from projections.activity import day_text
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, us
from projections.store import Db

FACT_COLUMNS = ("event_id", "customer_id", "position", "occurred_us", "recorded_us", "day",
                "kind", "case_id", "case_kind", "channel", "queue", "score")


class SatisfactionProjection(Projection):
    name = "satisfaction"
    touches = (s.CaseOpened, s.CaseAssigned, s.CaseSatisfactionRecorded)
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
        for pos, e in items:
            if isinstance(e, s.CaseOpened):
                db.execute(f"INSERT INTO {t.case} (case_id, case_kind, channel, queue) "
                           "VALUES (?,?,?,?) ON CONFLICT (case_id) DO NOTHING",
                           (e.case_id, e.case_kind, e.case_channel, e.queue))
                self._fact(db, t, pos, e, "case_opened", None)
            elif isinstance(e, s.CaseAssigned):
                db.execute(f"UPDATE {t.case} SET queue = ? WHERE case_id = ?",
                           (e.queue, e.case_id))
            elif isinstance(e, s.CaseSatisfactionRecorded):
                self._fact(db, t, pos, e, "csat", e.score)

    @staticmethod
    def _fact(db: Db, t: Names, pos: int, e: s.CaseOpened | s.CaseSatisfactionRecorded,
              kind: str, score: int | None) -> None:
        case = db.one(f"SELECT case_kind, channel, queue FROM {t.case} WHERE case_id = ?",
                      (e.case_id,))
        if case is None:  # an answer for a case this model never saw opened: not counted
            return
        at = us(e.occurred_at)
        db.execute(f"INSERT INTO {t.fact} ({', '.join(FACT_COLUMNS)}) VALUES "
                   f"({', '.join('?' * len(FACT_COLUMNS))}) ON CONFLICT (event_id) DO NOTHING",
                   (str(e.event_id), customer_id(e), pos, at, us(e.recorded_at), day_text(at),
                    kind, e.case_id, case[0], case[1], case[2], score))
