"""Reading response times: for each inbound touchpoint, the first outbound touchpoint to
the same customer on any channel after it (within ``RESPONSE_HORIZON_DAYS``), the
elapsed seconds and the business seconds between them; median and p90 per period ×
inbound channel; the pairs behind a figure.

Business seconds use the SLA calendar (``domain.sla``, from the service settings) of
the inbound touchpoint's queue (the default queue's calendar when it has none), so
hours outside business hours, weekends, holidays and closures do not count.

``as_of``: answered from the rows: inbound touchpoints recorded by the end of that day
(and not voided by then), each paired with the first outbound one recorded by then —
an answer recorded later was not known, so the inbound counts as unanswered then.
Periods are the inbound touchpoint's UTC day, week or month.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.analytics import Window, business_seconds, day_of, percentile, period_of
from domain.sla import SlaConfig
from projections.activity import NO_QUEUE, known
from projections.engine import Names
from projections.events import iso, moment
from projections.response_times.projection import ResponseTimesProjection
from projections.store import Db
from projections.views import LiveView

RESPONSE_HORIZON_DAYS = 30
_HORIZON_US = RESPONSE_HORIZON_DAYS * 86_400_000_000
COLUMNS = ("period", "channel", "inbound", "answered", "unanswered", "median_s", "p90_s",
           "median_business_s", "p90_business_s")
ALL_CHANNELS = "(all)"


def figures(pairs: Iterable[Mapping[str, Any]], by: str) -> list[dict[str, Any]]:
    """Per period × inbound channel (and per period over all channels, ``(all)``): inbound
    count, answered, unanswered, median and p90 of elapsed and business seconds."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for p in pairs:
        period = period_of(day_of(p["inbound_us"]), by)
        groups.setdefault((period, p["channel"]), []).append(p)
        groups.setdefault((period, ALL_CHANNELS), []).append(p)
    rows = []
    for (period, channel), members in sorted(groups.items()):
        answered = [p for p in members if p["elapsed_s"] is not None]
        elapsed = [p["elapsed_s"] for p in answered]
        business = [p["business_s"] for p in answered]
        rows.append({"period": period, "channel": channel, "inbound": len(members),
                     "answered": len(answered), "unanswered": len(members) - len(answered),
                     "median_s": percentile(elapsed, 0.5), "p90_s": percentile(elapsed, 0.9),
                     "median_business_s": percentile(business, 0.5),
                     "p90_business_s": percentile(business, 0.9)})
    return rows


class ResponseTimesView(LiveView):
    projection = ResponseTimesProjection()

    def __init__(self, store: Any, sla: SlaConfig) -> None:
        super().__init__(store)
        self.sla = sla

    def pairs(self, w: Window, channel: str | None = None, after: int = 0,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Each inbound touchpoint of the window (log order, after position ``after``) and
        its first answer as known (``w.as_of``)."""
        def query(db: Db, t: Names) -> list[Any]:
            known_o, o_params = known("o", w.known_before_us)
            known_i, i_params = known("i", w.known_before_us)
            where = ("i.direction = 'inbound' AND i.occurred_us >= ? AND i.occurred_us < ? "
                     "AND i.position > ?" + known_i)
            params: list[Any] = [w.start_us, w.end_us, after, *i_params]
            if channel is not None:
                where += " AND i.channel = ?"
                params.append(channel)
            tail = " LIMIT ?" if limit is not None else ""
            return db.all(
                "SELECT p.event_id, p.customer_id, p.position, p.occurred_us, p.recorded_us, "
                "p.channel, p.queue, o.event_id, o.occurred_us, o.recorded_us, o.channel "
                "FROM (SELECT i.event_id, i.customer_id, i.position, i.occurred_us, "
                "i.recorded_us, i.channel, i.queue, "
                f"(SELECT o.event_id FROM {t.touch} o WHERE o.customer_id = i.customer_id "
                "AND o.direction = 'outbound' AND o.occurred_us > i.occurred_us "
                f"AND o.occurred_us <= i.occurred_us + ?{known_o} "
                "ORDER BY o.occurred_us, o.position LIMIT 1) AS rid "
                f"FROM {t.touch} i WHERE {where}) p "
                f"LEFT JOIN {t.touch} o ON o.event_id = p.rid "
                f"ORDER BY p.position{tail}",
                [_HORIZON_US, *o_params, *params, *([limit] if limit is not None else [])])

        return [self._pair(r) for r in self.run(query)]

    def _pair(self, r: Any) -> dict[str, Any]:
        inbound_us, answer_us = int(r[3]), r[8]
        elapsed = business = None
        if answer_us is not None:
            elapsed = (int(answer_us) - inbound_us) / 1_000_000
            calendar = self.sla.calendar_for(None if r[6] == NO_QUEUE else r[6])
            business = business_seconds(calendar, moment(inbound_us), moment(int(answer_us)))
        return {"event_id": r[0], "customer_id": r[1], "position": int(r[2]),
                "inbound_us": inbound_us, "recorded_us": int(r[4]), "channel": r[5],
                "queue": r[6], "response_event_id": r[7], "response_us": answer_us,
                "response_recorded_us": r[9], "response_channel": r[10],
                "elapsed_s": elapsed, "business_s": business}

    def times(self, w: Window, channel: str | None = None) -> dict[str, Any]:
        """Median and p90 response times per ``w.by`` period × inbound channel."""
        rows = figures(self.pairs(w, channel), w.by)
        return {"from": w.start.isoformat(), "until": w.until.isoformat(), "by": w.by,
                "as_of": w.as_of.isoformat() if w.as_of else None,
                "horizon_days": RESPONSE_HORIZON_DAYS, "periods": w.labels(), "rows": rows}

    def events(self, w: Window, channel: str | None = None, after: int = 0,
               limit: int = 100) -> list[dict[str, Any]]:
        """The inbound touchpoints behind a figure (log order) with their answers' ids."""
        return [{"event_id": p["event_id"], "customer_id": p["customer_id"],
                 "position": p["position"], "occurred_at": iso(p["inbound_us"]),
                 "recorded_at": iso(p["recorded_us"]), "role": "inbound",
                 "detail": {"channel": p["channel"], "queue": p["queue"],
                            "response_event_id": p["response_event_id"],
                            "response_channel": p["response_channel"],
                            "response_at": iso(p["response_us"]),
                            "elapsed_s": p["elapsed_s"], "business_s": p["business_s"]}}
                for p in self.pairs(w, channel, after, limit)]

