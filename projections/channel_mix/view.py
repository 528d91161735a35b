"""Reading the channel mix: touchpoints per period × channel × direction, optionally split
by queue or by the customer's lifecycle stage at the time, and the touchpoints behind
any cell.

``as_of``: answered from the rows (each keeps ``recorded_us`` and ``voided_us``): the
touchpoints recorded by the end of that day and not voided by then — what a rebuild
from the events recorded by then gives (tests/contract/test_analytics_activity.py).
Weeks and months are summed from days at read time (``roll_up``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from domain.analytics import Window, day_of, period_of
from projections.activity import known
from projections.channel_mix.projection import ChannelMixProjection
from projections.engine import Names
from projections.events import iso
from projections.store import Db
from projections.timeline.view import InvalidQueryError
from projections.views import LiveView

SPLITS = ("none", "queue", "stage")
COLUMNS = ("period", "channel", "direction", "group", "touchpoints", "share")


def roll_up(day_rows: Iterable[Sequence[Any]], by: str) -> list[dict[str, Any]]:
    """``(day, channel, direction, group, count)`` rows summed into ``by`` periods, each
    with its ``share`` of its period's touchpoints; sorted by period, then biggest first."""
    cells: dict[tuple[str, str, str, str | None], int] = {}
    totals: dict[str, int] = {}
    for day, channel, direction, group, n in day_rows:
        period = period_of(_date(day), by)
        key = (period, str(channel), str(direction), group or None)
        cells[key] = cells.get(key, 0) + int(n)
        totals[period] = totals.get(period, 0) + int(n)
    rows = [{"period": p, "channel": c, "direction": d, "group": g, "touchpoints": n,
             "share": round(n / totals[p], 4)} for (p, c, d, g), n in cells.items()]
    rows.sort(key=lambda r: (r["period"], -r["touchpoints"], r["channel"], r["direction"],
                             r["group"] or ""))
    return rows


def _date(day: Any) -> date:
    return day if isinstance(day, date) else date.fromisoformat(str(day))


def _filters(w: Window, channel: str | None, direction: str | None,
             group: tuple[str, str] | None) -> tuple[str, list[Any]]:
    cond, params = known("x", w.known_before_us)
    where = "x.occurred_us >= ? AND x.occurred_us < ?" + cond
    params = [w.start_us, w.end_us, *params]
    for column, value in (("channel", channel), ("direction", direction)):
        if value is not None:
            where += f" AND x.{column} = ?"
            params.append(value)
    if group is not None:
        where += f" AND x.{group[0]} = ?"
        params.append(group[1])
    return where, params


def _split_column(split: str) -> str:
    if split not in SPLITS:
        raise InvalidQueryError(f"split must be one of {', '.join(SPLITS)}: {split!r}")
    return {"none": "NULL", "queue": "x.queue", "stage": "x.stage"}[split]


class ChannelMixView(LiveView):
    projection = ChannelMixProjection()

    def mix(self, w: Window, split: str = "none", channel: str | None = None,
            direction: str | None = None) -> dict[str, Any]:
        """Touchpoints per ``w.by`` period × channel × direction (× queue or stage)."""
        column = _split_column(split)

        grouped = "" if split == "none" else f", {column}"  # PostgreSQL: no GROUP BY NULL

        def query(db: Db, t: Names) -> list[Any]:
            where, params = _filters(w, channel, direction, None)
            return db.all(f"SELECT x.day, x.channel, x.direction, {column}, COUNT(*) "
                          f"FROM {t.touch} x WHERE {where} "
                          f"GROUP BY x.day, x.channel, x.direction{grouped}", params)

        rows = roll_up(self.run(query), w.by)
        by_channel: dict[str, int] = {}
        for r in rows:
            by_channel[r["channel"]] = by_channel.get(r["channel"], 0) + r["touchpoints"]
        return {"from": w.start.isoformat(), "until": w.until.isoformat(), "by": w.by,
                "as_of": w.as_of.isoformat() if w.as_of else None, "split": split,
                "periods": w.labels(), "total": sum(by_channel.values()),
                "by_channel": dict(sorted(by_channel.items())), "rows": rows}

    def events(self, w: Window, *, split: str = "none", group: str | None = None,
               channel: str | None = None, direction: str | None = None, after: int = 0,
               limit: int = 100) -> list[dict[str, Any]]:
        """The touchpoints behind a cell, in log order after position ``after``."""
        if group is not None and split == "none":
            raise InvalidQueryError("group needs split=queue or split=stage")
        _split_column(split)

        def query(db: Db, t: Names) -> list[Any]:
            where, params = _filters(w, channel, direction,
                                     (split, group) if group is not None else None)
            return db.all(f"SELECT x.event_id, x.customer_id, x.position, x.occurred_us, "
                          f"x.recorded_us, x.channel, x.direction, x.queue, x.stage "
                          f"FROM {t.touch} x WHERE {where} AND x.position > ? "
                          "ORDER BY x.position LIMIT ?", [*params, after, limit])

        return [{"event_id": r[0], "customer_id": r[1], "position": int(r[2]),
                 "occurred_at": iso(r[3]), "recorded_at": iso(r[4]), "role": "touchpoint",
                 "detail": {"channel": r[5], "direction": r[6], "queue": r[7], "stage": r[8],
                            "day": day_of(int(r[3])).isoformat()}}
                for r in self.run(query)]
