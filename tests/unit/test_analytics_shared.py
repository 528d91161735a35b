"""The analytics pieces every figure shares: periods, percentiles, the window, the
drill-down cursor, CSV answers and the charts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.analytics import (
    InvalidPeriodError,
    Window,
    business_seconds,
    percentile,
    period_of,
    periods,
    rate,
)
from domain.sla import DEFAULT_CONFIG, config_from_mapping
from read_api.analytics_common import csv_text
from read_api.cursors import CursorError, analytics_cursor, read_analytics_cursor
from touchstream.cli import plotting
from touchstream.cli.errors import CliError

PNG = b"\x89PNG\r\n\x1a\n"


def test_periods_are_utc_days_iso_weeks_and_months() -> None:
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    assert [period_of(d, "week") for d in (sunday, monday)] == ["2026-W48", "2026-W49"]
    assert period_of(monday, "month") == "2026-11" and period_of(monday, "day") == "2026-11-30"
    assert periods(date(2026, 11, 28), date(2026, 12, 1), "month") == ["2026-11", "2026-12"]
    assert periods(date(2026, 11, 28), date(2026, 12, 1), "week") == ["2026-W48", "2026-W49"]
    with pytest.raises(InvalidPeriodError):
        period_of(monday, "year")
    with pytest.raises(InvalidPeriodError):
        Window(monday, sunday)


def test_window_bounds_and_as_of_cutoff_in_microseconds() -> None:
    w = Window(date(1970, 1, 1), date(1970, 1, 1), "day", date(1970, 1, 2))
    assert (w.start_us, w.end_us, w.known_before_us) == (0, 86_400_000_000, 172_800_000_000)
    assert Window(date(1970, 1, 1), date(1970, 1, 1)).known_before_us is None


def test_percentiles_are_nearest_rank_and_rates_none_without_a_whole() -> None:
    values = [float(v) for v in range(10, 0, -1)]  # 1..10, unsorted
    assert (percentile(values, 0.5), percentile(values, 0.9)) == (5.0, 9.0)
    assert (percentile(values + [11.0], 0.5), percentile(values + [11.0], 0.9)) == (6.0, 10.0)
    assert percentile([7.0], 0.9) == 7.0 and percentile([], 0.5) is None
    assert rate(1, 3) == 0.3333 and rate(0, 0) is None


def test_business_seconds_skip_the_weekend_on_the_office_calendar() -> None:
    office = config_from_mapping(DEFAULT_CONFIG).calendars["office"]  # Berlin, 08-18 Mon-Fri
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 17:00 in Berlin: one hour left
    monday = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # 09:30 in Berlin
    assert business_seconds(office, friday, monday) == 3600 + 5400
    assert business_seconds(office, monday, friday) == 0.0


def test_a_drill_down_cursor_pages_only_its_figure_and_filters() -> None:
    text = analytics_cursor("channel-mix", "abc", 42)
    assert read_analytics_cursor(text, "channel-mix", "abc") == 42
    for figure, key in (("satisfaction", "abc"), ("channel-mix", "abd")):
        with pytest.raises(CursorError):
            read_analytics_cursor(text, figure, key)
    with pytest.raises(CursorError):
        read_analytics_cursor(analytics_cursor("channel-mix", "abc", -1), "channel-mix", "abc")


def test_csv_rows_have_a_header_empty_nulls_and_json_for_nested_values() -> None:
    text = csv_text([{"period": "2026-11", "n": 3, "x": None, "scores": {"5": 1}}],
                    ("period", "n", "x", "scores"))
    assert text == 'period,n,x,scores\n2026-11,3,,"{""5"":1}"\n'


def test_charts_are_png_files_and_a_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "series.png"
    plotting.time_series(str(out), ["2026-01", "2026-02"], {"email": [1, None], "web": [2, 3]},
                         title="t", ylabel="n", stacked=True)
    heat = tmp_path / "heat.png"
    plotting.heatmap(str(heat), ["2026-01", "2026-02"], ["0", "1"], [[1.0, 0.5], [1.0, None]],
                     title="cohorts", xlabel="months since", ylabel="cohort")
    assert out.read_bytes()[:8] == PNG and heat.read_bytes()[:8] == PNG
    with pytest.raises(CliError, match="no such directory"):
        plotting.time_series(str(tmp_path / "nowhere" / "x.png"), ["a"], {"s": [1]},
                             title="t", ylabel="n")
    with pytest.raises(CliError, match="PNG"):
        plotting.time_series(str(tmp_path / "x.jpg"), ["a"], {"s": [1]}, title="t", ylabel="n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png", "series.png"]
