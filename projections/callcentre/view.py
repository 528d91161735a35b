"""Reading the call-centre figures: per queue and hour (or day), for a period.

Offered = every call that started in the bucket; answered, abandoned (gave up in
the queue), missed (never queued or answered) and other outcomes (voicemail,
busy, failed) by the calls' summaries; still in progress = no outcome yet. Wait
and talk times are over answered calls; the service level is the share answered
within ``service_s`` seconds. Buckets are UTC hours (or days) of the call's start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from projections.callcentre.projection import HOUR_US, CallCentreProjection
from projections.engine import Names
from projections.events import iso, us
from projections.store import Db
from projections.views import LiveView

DAY_US = 24 * HOUR_US
MAX_SPAN_DAYS = 366
Bucket = Literal["hour", "day"]


class InvalidFiguresQueryError(ValueError):
    """Raised when a period is empty, reversed or longer than a year."""


def _figures(db: Db, t: Names, start: datetime, end: datetime, bucket: Bucket,
             queue: str | None, direction: str) -> list[dict[str, Any]]:
    size = HOUR_US if bucket == "hour" else DAY_US
    where, params = "started_us >= ? AND started_us < ? AND direction = ?", [
        us(start), us(end), direction]
    if queue is not None:
        where += " AND queue = ?"
        params.append(queue)
    answered = "outcome = 'answered'"
    rows = db.all(
        f"SELECT COALESCE(queue, ''), (hour_us / {size}) * {size}, COUNT(*), "
        f"SUM(CASE WHEN {answered} THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'abandoned' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'missed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome IS NULL THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {answered} AND wait_s IS NOT NULL THEN wait_s ELSE 0 END), "
        f"SUM(CASE WHEN {answered} AND wait_s IS NOT NULL THEN 1 ELSE 0 END), "
        f"MAX(CASE WHEN {answered} THEN wait_s END), "
        f"SUM(CASE WHEN {answered} AND talk_s IS NOT NULL THEN talk_s ELSE 0 END), "
        f"SUM(CASE WHEN {answered} AND talk_s IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN outcome = 'abandoned' AND wait_s IS NOT NULL THEN wait_s ELSE 0 END), "
        f"SUM(CASE WHEN {answered} AND wait_s <= ? THEN 1 ELSE 0 END) "
        f"FROM {t.call} WHERE {where} GROUP BY 1, 2 ORDER BY 2, 1",
        [_SERVICE_S, *params])
    out = []
    for (q, at, offered, ans, aband, missed, ongoing, wait_sum, waits, wait_max, talk_sum,
         talks, aband_wait, within) in rows:
        offered, ans, aband = int(offered), int(ans), int(aband)
        out.append({
            "queue": q or None, "bucket": iso(int(at)), "offered": offered, "answered": ans,
            "abandoned": aband, "missed": int(missed),
            "other": offered - ans - aband - int(missed) - int(ongoing),
            "in_progress": int(ongoing),
            "abandonment_rate": round(aband / offered, 4) if offered else 0.0,
            "avg_wait_s": round(int(wait_sum) / int(waits), 1) if int(waits) else None,
            "max_wait_s": int(wait_max) if wait_max is not None else None,
            "avg_talk_s": round(int(talk_sum) / int(talks), 1) if int(talks) else None,
            "talk_s": int(talk_sum),
            "avg_abandon_wait_s": round(int(aband_wait) / aband, 1) if aband else None,
            "service_level": round(int(within) / ans, 4) if ans else None,
        })
    return out


#: Answered within this many seconds counts towards the service level (the common 80/20).
_SERVICE_S = 20


class CallCentreView(LiveView):
    projection = CallCentreProjection()
    service_s = _SERVICE_S

    def figures(self, start: datetime, end: datetime, *, bucket: Bucket = "hour",
                queue: str | None = None, direction: str = "inbound") -> list[dict[str, Any]]:
        """One row per queue and bucket with calls in ``[start, end)``."""
        if end <= start:
            raise InvalidFiguresQueryError("the period's end must be after its start")
        if (end - start).days > MAX_SPAN_DAYS:
            raise InvalidFiguresQueryError(f"a period may span at most {MAX_SPAN_DAYS} days")
        if bucket not in ("hour", "day"):
            raise InvalidFiguresQueryError(f"bucket must be hour or day, got {bucket!r}")
        return self.run(lambda db, t: _figures(db, t, start, end, bucket, queue, direction))
