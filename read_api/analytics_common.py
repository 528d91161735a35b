"""What every ``/analytics/...`` route shares: the window asked for, paging, JSON or CSV,
and the drill-down to the events behind a figure.

An analytics router is ``def router(deps: ReadDeps, ...) -> APIRouter`` with routes

* ``GET /analytics/<figure>``: ``window: Annotated[Window, Depends(window)]`` (``from``,
  ``until``, ``by`` = day|week|month, ``as_of``), ``fmt: FormatParam = "json"`` and
  ``return await answer(deps, fmt, "<figure>", lambda: view.figure(window), COLUMNS)``:
  the view returns ``{"rows": [...], ...}`` and ``?format=csv`` answers the rows as
  ``text/csv`` (one header row, the columns named);
* ``GET /analytics/<figure>/events``: the same window and filters plus
  ``page: Annotated[Page, Depends(page)]``, answered by ``drill_down(...)``: the
  contributing events in log order, a page at a time, with a cursor bound to the figure
  and its filters (a cursor of another figure or filter answers 400).

Access: ``ANALYTICS_ROLES`` (analyst; admin is admitted everywhere). No personal data
leaves these routes (ids, channels, counts, times), so none is recorded in the read
audit. Errors have the one shape of ``touchstream.http_errors`` (400 with the reason for
a malformed window or cursor, 503 while a read model is not built).

``as_of`` (an ISO date): the figures as they were known at the end of that day (UTC):
rows recorded later are left out. Each read model says per figure whether it answers
from its rows (``occurred_at`` and ``recorded_at`` kept and filtered) or by a bounded
replay.
"""

# No "from __future__ import annotations": FastAPI must see the dependency signatures evaluated.

import csv
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from domain.analytics import InvalidPeriodError, Window
from read_api.cursors import CursorError, analytics_cursor, read_analytics_cursor
from read_api.dependencies import OrjsonResponse, ReadDeps, responses

ANALYTICS_ROLES = ("analyst",)  # and admin, admitted everywhere
MAX_DAYS = 1100  # three years of days per request: ≤ 1100 rows per series
DEFAULT_DAYS = 90
EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)  # day arithmetic never overflows
MAX_PAGE = 500
DEFAULT_PAGE = 100

Granularity = Literal["day", "week", "month"]
FormatParam = Annotated[Literal["json", "csv"], Query(
    alias="format", description="`csv`: the rows as text/csv with a header row.")]


def window(
    from_: Annotated[date | None, Query(alias="from", description=(
        "First day (UTC, included); default 89 days before `until`."),
        openapi_examples={"q3": {"value": "2026-07-01"}})] = None,
    until: Annotated[date | None, Query(description=(
        "Last day (UTC, included); default `as_of`, or today."),
        openapi_examples={"q3": {"value": "2026-09-30"}})] = None,
    by: Annotated[Granularity, Query(description="Period of each row.")] = "day",
    as_of: Annotated[date | None, Query(description=(
        "The figures as known at the end of this day (UTC): events recorded later are left "
        "out. Default: as known now."), openapi_examples={"then": {"value": "2026-10-01"}})
    ] = None,
) -> Window:
    """The route dependency giving the window asked for (400 with the reason if malformed)."""
    for name, value in (("from", from_), ("until", until), ("as_of", as_of)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise HTTPException(400, detail=f"{name} must be between {EARLIEST} and {LATEST}")
    last = until or as_of or datetime.now(UTC).date()
    first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise HTTPException(400, detail=f"until ({last}) is before from ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise HTTPException(400, detail=f"at most {MAX_DAYS} days per request "
                                        f"(asked {(last - first).days + 1})")
    try:
        return Window(first, last, by, as_of)
    except InvalidPeriodError as exc:
        raise HTTPException(400, detail=str(exc)) from exc


@dataclass(frozen=True)
class Page:
    """A drill-down page: at most ``limit`` events after ``cursor``."""

    limit: int
    cursor: str | None


def page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Events per page.")]
    = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=1000, description=(
        "`next_cursor` of the previous page (bound to this figure and these filters)."))]
    = None,
) -> Page:
    return Page(limit, cursor)


class DrillEventPublic(BaseModel):
    event_id: str
    customer_id: str
    position: int = Field(description="Log position of the event.")
    occurred_at: str
    recorded_at: str
    role: str = Field(description="What the event is to the figure (e.g. `touchpoint`, "
                                  "`inbound`, `response`, `csat`, `case_opened`).")
    detail: dict[str, Any] = Field(description="The clear fields the figure used.")


class DrillPagePublic(BaseModel):
    figure: str
    filters: dict[str, Any] = Field(description="The window and filters the events are of.")
    items: list[DrillEventPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")

    model_config = {"json_schema_extra": {"examples": [{
        "figure": "response-times", "filters": {
            "from": "2026-09-01", "until": "2026-09-30", "as_of": None, "channel": "email"},
        "items": [{"event_id": "7d1e5c2a-3b4f-5a6e-8d9c-0b1a2c3d4e5f",
                   "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "position": 1812,
                   "occurred_at": "2026-09-04T17:40:00+00:00",
                   "recorded_at": "2026-09-04T17:40:02+00:00", "role": "inbound",
                   "detail": {"channel": "email", "queue": "(none)",
                              "response_event_id": "2c4e6a8b-0d1f-4a3b-8c5d-7e9f0a1b2c3d",
                              "response_channel": "phone",
                              "response_at": "2026-09-07T09:10:00+00:00",
                              "elapsed_s": 228600.0, "business_s": 11400.0}}],
        "next_cursor": "WyJhbmFseXRpY3M6cmVzcG9uc2UtdGltZXMiLCI1ZjNhIiwxODEyXQ"}]}}


def analytics_responses(csv_example: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a figure route: 200 as JSON or CSV, 400, 503."""
    out = responses(400, 503, s400="until (2026-06-30) is before from (2026-07-01)")
    out[200] = {"content": {"text/csv": {"schema": {"type": "string"},
                                         "example": csv_example}}}
    return out


def drill_responses() -> dict[int | str, dict[str, Any]]:
    return responses(400, 503, s400="cursor is not one this API returned for this figure")


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV: a header row of ``columns``, then one line per row (None empty,
    nested values as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


async def answer(deps: ReadDeps, fmt: str, figure: str, query: Callable[[], dict[str, Any]],
                 columns: Sequence[str]) -> Response:
    """Run ``query`` (it returns a document with ``rows``) and answer it as JSON, or its rows
    as ``text/csv`` when ``fmt`` is ``csv``."""
    doc = await deps.call(query)
    if fmt == "csv":
        return Response(csv_text(doc["rows"], columns), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{figure}.csv"'})
    return OrjsonResponse(doc)


def window_filters(w: Window, **filters: Any) -> dict[str, Any]:
    """The window and filters as the drill-down echoes them (and binds its cursor to)."""
    out: dict[str, Any] = {"from": w.start.isoformat(), "until": w.until.isoformat(),
                           "as_of": w.as_of.isoformat() if w.as_of else None}
    out.update({k: v for k, v in filters.items() if v is not None})
    return out


def _filters_key(filters: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(dict(filters), option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


async def drill_down(deps: ReadDeps, figure: str, filters: Mapping[str, Any], pg: Page,
                     fetch: Callable[[int, int], list[dict[str, Any]]]) -> OrjsonResponse:
    """A page of the events behind ``figure``: ``fetch(after_position, n)`` returns up to
    ``n`` events (``DrillEventPublic`` fields) after that log position, in log order."""
    key = _filters_key(filters)
    after = 0
    if pg.cursor is not None:
        try:
            after = read_analytics_cursor(pg.cursor, figure, key)
        except CursorError as exc:
            raise HTTPException(400, detail=str(exc)) from exc
    rows = await deps.call(fetch, after, pg.limit + 1)
    items = rows[:pg.limit]
    more = len(rows) > pg.limit
    return OrjsonResponse({
        "figure": figure, "filters": dict(filters), "items": items,
        "next_cursor": analytics_cursor(figure, key, items[-1]["position"]) if more else None})
