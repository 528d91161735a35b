"""``touchstream analytics channel-mix|response-times|satisfaction``: the activity figures
(the same views as ``GET /analytics/...``), with the window and output flags of
``touchstream.cli.analytics``.

``--plot``: channel mix as stacked bars per channel (or queue/stage with ``--split``),
response times as median lines per channel (business hours with ``--business``),
satisfaction as CSAT average and complaint rate lines.
"""

from __future__ import annotations

import argparse
from typing import Any

from domain.analytics import Window
from projections.channel_mix.view import COLUMNS as MIX_COLUMNS
from projections.channel_mix.view import SPLITS, ChannelMixView
from projections.response_times.view import COLUMNS as RESPONSE_COLUMNS
from projections.response_times.view import ResponseTimesView
from projections.satisfaction.view import COLUMNS as SATISFACTION_COLUMNS
from projections.satisfaction.view import SatisfactionView
from touchstream import settings as settings_mod
from touchstream.cli import plotting
from touchstream.cli.analytics import (
    add_output_flags,
    add_window_flags,
    emit,
    quiet,
    series,
    window_of,
)
from touchstream.cli.reading import read_models


def register(asub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = asub.add_parser("channel-mix", help="touchpoints per period, channel and direction")
    m.add_argument("--split", choices=SPLITS, default="none",
                   help="split by queue or by the lifecycle stage at the time")
    m.add_argument("--channel")
    m.add_argument("--direction", choices=("inbound", "outbound"))
    add_window_flags(m)
    add_output_flags(m)
    m.set_defaults(func=_channel_mix)
    r = asub.add_parser("response-times", help="time to the first outbound answer after an "
                                               "inbound touchpoint: median, p90")
    r.add_argument("--channel", help="only inbound touchpoints of this channel")
    r.add_argument("--business", action="store_true",
                   help="plot business seconds (SLA calendar) instead of elapsed ones")
    add_window_flags(r)
    add_output_flags(r)
    r.set_defaults(func=_response_times)
    s = asub.add_parser("satisfaction", help="CSAT answers and complaint rate per period")
    s.add_argument("--queue")
    s.add_argument("--channel", help="the cases' channel")
    add_window_flags(s)
    add_output_flags(s)
    s.set_defaults(func=_satisfaction)


def _title(what: str, w: Window) -> str:
    known = f", as known {w.as_of}" if w.as_of else ""
    return f"{what}, {w.start} – {w.until} by {w.by}{known}"


def _channel_mix(args: argparse.Namespace) -> int:
    w = window_of(args)
    with read_models(quiet=quiet(args)) as store:
        doc = ChannelMixView(store).mix(w, args.split, args.channel, args.direction)

    def plot(path: str) -> None:
        key = "channel" if args.split == "none" else "group"
        plotting.time_series(path, doc["periods"], series(doc["rows"], doc["periods"], key,
                                                          "touchpoints"),
                             title=_title("Touchpoints", w), ylabel="touchpoints",
                             stacked=True)

    return emit(args, doc, MIX_COLUMNS, plot=plot)


def _seconds(value: Any) -> str | None:
    if value is None:
        return None
    hours = float(value) / 3600
    return f"{hours:.1f} h"


def _response_times(args: argparse.Namespace) -> int:
    w = window_of(args)
    with read_models(quiet=quiet(args)) as store:
        doc = ResponseTimesView(store, settings_mod.load().service.sla).times(w, args.channel)
    value = "median_business_s" if args.business else "median_s"

    def plot(path: str) -> None:
        hours = [{**r, value: None if r[value] is None else r[value] / 3600}
                 for r in doc["rows"]]
        plotting.time_series(path, doc["periods"], series(hours, doc["periods"], "channel",
                                                          value),
                             title=_title("Median response" + (" (business hours)"
                                                               if args.business else ""), w),
                             ylabel="hours")

    if args.json or args.csv:
        return emit(args, doc, RESPONSE_COLUMNS, plot=plot)
    shown = [{**r, **{c: _seconds(r[c]) for c in RESPONSE_COLUMNS[5:]}} for r in doc["rows"]]
    return emit(args, doc, RESPONSE_COLUMNS, plot=plot, rows=shown,
                headers=("PERIOD", "CHANNEL", "INBOUND", "ANSWERED", "UNANSWERED", "MEDIAN",
                         "P90", "MEDIAN (BUSINESS)", "P90 (BUSINESS)"))


def _satisfaction(args: argparse.Namespace) -> int:
    w = window_of(args)
    with read_models(quiet=quiet(args)) as store:
        doc = SatisfactionView(store).satisfaction(w, args.queue, args.channel)

    def plot(path: str) -> None:
        labels = doc["periods"]
        plotting.time_series(path, labels, {
            "CSAT average (1–5)": [r["csat_average"] for r in doc["rows"]],
            "complaint rate (×5)": [None if r["complaint_rate"] is None
                                    else r["complaint_rate"] * 5 for r in doc["rows"]]},
            title=_title("Satisfaction", w), ylabel="score")

    if args.json or args.csv:
        return emit(args, doc, SATISFACTION_COLUMNS, plot=plot)
    shown = [{**r, "scores": " ".join(f"{k}:{v}" for k, v in r["scores"].items())}
             for r in doc["rows"]]
    return emit(args, doc, SATISFACTION_COLUMNS, plot=plot, rows=shown)
