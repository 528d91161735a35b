"""Reading satisfaction: CSAT answers (1–5) and the complaint rate per period, and the
events behind them.

Per period: ``cases_opened``, ``complaints`` (cases opened as complaints),
``complaint_rate`` = complaints / cases opened (null with no case opened),
``csat_answers``, ``csat_average`` (mean score, 2 decimals), ``csat_satisfied`` (the
share of answers scoring 4 or 5: the usual "CSAT %") and ``scores`` (answers per score).
A case's answer counts in the period it was given, its opening in the period it opened.

``as_of``: answered from the rows (each keeps ``recorded_us``): the events recorded by the
end of that day — what a rebuild from the events recorded by then gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from domain.analytics import Window, period_of, rate
from projections.engine import Names
from projections.events import iso
from projections.satisfaction.projection import SatisfactionProjection
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

COLUMNS = ("period", "cases_opened", "complaints", "complaint_rate", "csat_answers",
           "csat_average", "csat_satisfied", "scores")
KINDS = ("case_opened", "complaint", "csat")


def figures(day_rows: Iterable[Sequence[Any]], by: str, labels: Sequence[str]
            ) -> list[dict[str, Any]]:
    """``(day, kind, case_kind, score, count)`` rows as one figure row per period of
    ``labels`` (every period, empty ones too)."""
    acc = {p: {"opened": 0, "complaints": 0, "scores": dict.fromkeys(range(1, 6), 0)}
           for p in labels}
    for day, kind, case_kind, score, n in day_rows:
        cell = acc.get(period_of(date.fromisoformat(str(day)), by))
        if cell is None:
            continue
        if kind == "case_opened":
            cell["opened"] += int(n)
            cell["complaints"] += int(n) if case_kind == "complaint" else 0
        elif score is not None:
            cell["scores"][int(score)] += int(n)
    rows = []
    for period, cell in acc.items():
        scores: dict[int, int] = cell["scores"]
        answers = sum(scores.values())
        total = sum(k * v for k, v in scores.items())
        rows.append({"period": period, "cases_opened": cell["opened"],
                     "complaints": cell["complaints"],
                     "complaint_rate": rate(cell["complaints"], cell["opened"]),
                     "csat_answers": answers,
                     "csat_average": round(total / answers, 2) if answers else None,
                     "csat_satisfied": rate(scores[4] + scores[5], answers),
                     "scores": {str(k): v for k, v in scores.items()}})
    return rows


def _where(w: Window, queue: str | None, channel: str | None) -> tuple[str, list[Any]]:
    where = "f.occurred_us >= ? AND f.occurred_us < ?"
    params: list[Any] = [w.start_us, w.end_us]
    if w.known_before_us is not None:
        where += " AND f.recorded_us < ?"
        params.append(w.known_before_us)
    for column, value in (("queue", queue), ("channel", channel)):
        if value is not None:
            where += f" AND f.{column} = ?"
            params.append(value)
    return where, params


class SatisfactionView(LiveView):
    projection = SatisfactionProjection()

    def satisfaction(self, w: Window, queue: str | None = None,
                     channel: str | None = None) -> dict[str, Any]:
        """CSAT and complaint rate per ``w.by`` period (of a queue or case channel)."""
        def query(db: Db, t: Names) -> list[Any]:
            where, params = _where(w, queue, channel)
            return db.all(f"SELECT f.day, f.kind, f.case_kind, f.score, COUNT(*) "
                          f"FROM {t.fact} f WHERE {where} "
                          "GROUP BY f.day, f.kind, f.case_kind, f.score", params)

        labels = w.labels()
        return {"from": w.start.isoformat(), "until": w.until.isoformat(), "by": w.by,
                "as_of": w.as_of.isoformat() if w.as_of else None, "periods": labels,
                "rows": figures(self.run(query), w.by, labels)}

    def events(self, w: Window, *, kind: str | None = None, queue: str | None = None,
               channel: str | None = None, after: int = 0, limit: int = 100
               ) -> list[dict[str, Any]]:
        """The case openings and CSAT answers behind a figure, in log order."""
        if kind is not None and kind not in KINDS:
            raise InvalidQueryError(f"kind must be one of {', '.join(KINDS)}: {kind!r}")

        def query(db: Db, t: Names) -> list[Any]:
            where, params = _where(w, queue, channel)
            if kind == "complaint":
                where += " AND f.kind = 'case_opened' AND f.case_kind = 'complaint'"
            elif kind is not None:
                where += " AND f.kind = ?"
                params.append(kind)
            return db.all(f"SELECT f.event_id, f.customer_id, f.position, f.occurred_us, "
                          "f.recorded_us, f.kind, f.case_id, f.case_kind, f.channel, f.queue, "
                          f"f.score FROM {t.fact} f WHERE {where} AND f.position > ? "
                          "ORDER BY f.position LIMIT ?", [*params, after, limit])

        return [{"event_id": r[0], "customer_id": r[1], "position": int(r[2]),
                 "occurred_at": iso(r[3]), "recorded_at": iso(r[4]), "role": r[5],
                 "detail": {"case_id": r[6], "case_kind": r[7], "channel": r[8],
                            "queue": r[9], "score": r[10]}}
                for r in self.run(query)]
