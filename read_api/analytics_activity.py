"""Activity analytics: channel mix, response times and satisfaction, and the events behind
each figure (analyst and admin keys; see ``read_api.analytics_common`` for the window,
``?format=csv`` and the drill-down cursor).

| Route                                           | Figure                                     |
|-------------------------------------------------|--------------------------------------------|
| GET /analytics/channel-mix[/events]             | touchpoints per period × channel × direction (× queue or stage) |
| GET /analytics/response-times[/events]          | first outbound answer after an inbound touchpoint: median, p90 (elapsed and business seconds) |
| GET /analytics/satisfaction[/events]            | CSAT answers and complaint rate per period |

Every figure takes ``as_of`` and answers it from its read model's rows (each keeps when
it was recorded), never by a replay; the views' docstrings say how.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from domain.analytics import Window
from domain.sla import SlaConfig
from projections.channel_mix.view import COLUMNS as MIX_COLUMNS
from projections.channel_mix.view import ChannelMixView
from projections.response_times.view import COLUMNS as RESPONSE_COLUMNS
from projections.response_times.view import ResponseTimesView
from projections.satisfaction.view import COLUMNS as SATISFACTION_COLUMNS
from projections.satisfaction.view import SatisfactionView
from read_api.analytics_common import (
    ANALYTICS_ROLES,
    DrillPagePublic,
    FormatParam,
    Page,
    analytics_responses,
    answer,
    drill_down,
    drill_responses,
    page,
    window,
    window_filters,
)
from read_api.dependencies import OrjsonResponse, Principal, ReadDeps

Channel = Annotated[str | None, Query(max_length=40, description="Only this channel.",
                                      openapi_examples={"email": {"value": "email"}})]
Direction = Annotated[Literal["inbound", "outbound"] | None, Query()]
Split = Annotated[Literal["none", "queue", "stage"], Query(description=(
    "Split each cell by the touchpoint's queue (`(none)` without one) or by the lifecycle "
    "stage its customer was in at the time."))]


class MixRowPublic(BaseModel):
    period: str = Field(description="`2026-09-14`, `2026-W38` or `2026-09`.")
    channel: str
    direction: str
    group: str | None = Field(description="Queue or stage (with `split`), else null.")
    touchpoints: int
    share: float = Field(description="Of the period's touchpoints (0…1).")


class ChannelMixPublic(BaseModel):
    from_: str = Field(alias="from")
    until: str
    by: str
    as_of: str | None
    split: str
    periods: list[str]
    total: int
    by_channel: dict[str, int]
    rows: list[MixRowPublic]

    model_config = {"json_schema_extra": {"examples": [{
        "from": "2026-09-01", "until": "2026-09-30", "by": "month", "as_of": None,
        "split": "stage", "periods": ["2026-09"], "total": 42,
        "by_channel": {"email": 30, "phone": 12},
        "rows": [{"period": "2026-09", "channel": "email", "direction": "inbound",
                  "group": "current", "touchpoints": 18, "share": 0.4286},
                 {"period": "2026-09", "channel": "email", "direction": "outbound",
                  "group": "current", "touchpoints": 12, "share": 0.2857},
                 {"period": "2026-09", "channel": "phone", "direction": "inbound",
                  "group": "prospect", "touchpoints": 12, "share": 0.2857}]}]}}


class ResponseRowPublic(BaseModel):
    period: str
    channel: str = Field(description="The inbound touchpoint's channel; `(all)`: every one.")
    inbound: int
    answered: int = Field(description="Answered within `horizon_days` (as known `as_of`).")
    unanswered: int
    median_s: float | None = Field(description="Elapsed seconds (nearest rank).")
    p90_s: float | None
    median_business_s: float | None = Field(description=(
        "Business seconds under the SLA calendar of the inbound touchpoint's queue."))
    p90_business_s: float | None


class ResponseTimesPublic(BaseModel):
    from_: str = Field(alias="from")
    until: str
    by: str
    as_of: str | None
    horizon_days: int = Field(description="An answer later than this does not count.")
    periods: list[str]
    rows: list[ResponseRowPublic]

    model_config = {"json_schema_extra": {"examples": [{
        "from": "2026-09-01", "until": "2026-09-30", "by": "month", "as_of": "2026-10-01",
        "horizon_days": 30, "periods": ["2026-09"],
        "rows": [{"period": "2026-09", "channel": "(all)", "inbound": 40, "answered": 36,
                  "unanswered": 4, "median_s": 14400.0, "p90_s": 201600.0,
                  "median_business_s": 10800.0, "p90_business_s": 32400.0},
                 {"period": "2026-09", "channel": "email", "inbound": 25, "answered": 24,
                  "unanswered": 1, "median_s": 18000.0, "p90_s": 259200.0,
                  "median_business_s": 12600.0, "p90_business_s": 36000.0}]}]}}


class SatisfactionRowPublic(BaseModel):
    period: str
    cases_opened: int
    complaints: int
    complaint_rate: float | None = Field(description="Complaints / cases opened.")
    csat_answers: int
    csat_average: float | None = Field(description="Mean score (1–5).")
    csat_satisfied: float | None = Field(description="Share of answers scoring 4 or 5.")
    scores: dict[str, int] = Field(description="Answers per score, `1`…`5`.")


class SatisfactionPublic(BaseModel):
    from_: str = Field(alias="from")
    until: str
    by: str
    as_of: str | None
    periods: list[str]
    rows: list[SatisfactionRowPublic]

    model_config = {"json_schema_extra": {"examples": [{
        "from": "2026-07-01", "until": "2026-09-30", "by": "month", "as_of": None,
        "periods": ["2026-07", "2026-08", "2026-09"],
        "rows": [{"period": "2026-07", "cases_opened": 20, "complaints": 5,
                  "complaint_rate": 0.25, "csat_answers": 12, "csat_average": 4.08,
                  "csat_satisfied": 0.75, "scores": {"1": 1, "2": 0, "3": 2, "4": 3, "5": 6}}]
    }]}}


_MIX_CSV = ("period,channel,direction,group,touchpoints,share\n"
            "2026-09,email,inbound,,18,0.4286\n")
_RESPONSE_CSV = ("period,channel,inbound,answered,unanswered,median_s,p90_s,"
                 "median_business_s,p90_business_s\n"
                 "2026-09,email,25,24,1,18000.0,259200.0,12600.0,36000.0\n")
_SATISFACTION_CSV = ("period,cases_opened,complaints,complaint_rate,csat_answers,"
                     "csat_average,csat_satisfied,scores\n"
                     '2026-07,20,5,0.25,12,4.08,0.75,"{""1"":1,""2"":0,""3"":2,""4"":3,'
                     '""5"":6}"\n')


def router(deps: ReadDeps, sla: SlaConfig) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    mix = ChannelMixView(deps.views.store)
    times = ResponseTimesView(deps.views.store, sla)
    csat = SatisfactionView(deps.views.store)
    reader = deps.reader(*ANALYTICS_ROLES)
    Win = Annotated[Window, Depends(window)]
    Who = Annotated[Principal, Depends(reader)]
    Paged = Annotated[Page, Depends(page)]

    @router.get("/analytics/channel-mix", summary="Touchpoints per period, channel and "
                "direction (split by queue or lifecycle stage)", response_class=OrjsonResponse,
                response_model=ChannelMixPublic, responses=analytics_responses(_MIX_CSV))
    async def channel_mix(who: Who, w: Win, split: Split = "none", channel: Channel = None,
                          direction: Direction = None, fmt: FormatParam = "json") -> Response:
        return await answer(deps, fmt, "channel-mix",
                            lambda: mix.mix(w, split, channel, direction), MIX_COLUMNS)

    @router.get("/analytics/channel-mix/events", summary="The touchpoints behind a channel-mix "
                "figure", response_class=OrjsonResponse, response_model=DrillPagePublic,
                responses=drill_responses())
    async def channel_mix_events(
        who: Who, w: Win, pg: Paged, split: Split = "none",
        group: Annotated[str | None, Query(max_length=100, description=(
            "Only this queue or stage (with `split`)."))] = None,
        channel: Channel = None, direction: Direction = None,
    ) -> OrjsonResponse:
        return await drill_down(
            deps, "channel-mix",
            window_filters(w, split=split, group=group, channel=channel, direction=direction),
            pg, lambda after, n: mix.events(w, split=split, group=group, channel=channel,
                                            direction=direction, after=after, limit=n))

    @router.get("/analytics/response-times", summary="Time to the first outbound answer after "
                "an inbound touchpoint: median and p90 per period and channel",
                response_class=OrjsonResponse, response_model=ResponseTimesPublic,
                responses=analytics_responses(_RESPONSE_CSV))
    async def response_times(who: Who, w: Win, channel: Channel = None,
                             fmt: FormatParam = "json") -> Response:
        return await answer(deps, fmt, "response-times", lambda: times.times(w, channel),
                            RESPONSE_COLUMNS)

    @router.get("/analytics/response-times/events", summary="The inbound touchpoints behind a "
                "response-time figure, with their answers", response_class=OrjsonResponse,
                response_model=DrillPagePublic, responses=drill_responses())
    async def response_times_events(who: Who, w: Win, pg: Paged,
                                    channel: Channel = None) -> OrjsonResponse:
        return await drill_down(
            deps, "response-times", window_filters(w, channel=channel), pg,
            lambda after, n: times.events(w, channel, after=after, limit=n))

    @router.get("/analytics/satisfaction", summary="CSAT answers and complaint rate per period",
                response_class=OrjsonResponse, response_model=SatisfactionPublic,
                responses=analytics_responses(_SATISFACTION_CSV))
    async def satisfaction(
        who: Who, w: Win,
        queue: Annotated[str | None, Query(max_length=100, description="Only this queue.")]
        = None,
        channel: Channel = None, fmt: FormatParam = "json",
    ) -> Response:
        return await answer(deps, fmt, "satisfaction",
                            lambda: csat.satisfaction(w, queue, channel), SATISFACTION_COLUMNS)

    @router.get("/analytics/satisfaction/events", summary="The case openings and CSAT answers "
                "behind a satisfaction figure", response_class=OrjsonResponse,
                response_model=DrillPagePublic, responses=drill_responses())
    async def satisfaction_events(
        who: Who, w: Win, pg: Paged,
        kind: Annotated[Literal["case_opened", "complaint", "csat"] | None, Query()] = None,
        queue: Annotated[str | None, Query(max_length=100)] = None,
        channel: Channel = None,
    ) -> OrjsonResponse:
        return await drill_down(
            deps, "satisfaction", window_filters(w, kind=kind, queue=queue, channel=channel),
            pg, lambda after, n: csat.events(w, kind=kind, queue=queue, channel=channel,
                                             after=after, limit=n))

    return router
