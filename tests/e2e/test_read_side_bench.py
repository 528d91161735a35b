"""The read-side benchmark scenarios run end to end at a tiny size (figures not asserted)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip("touchstream.bench.stores",
                    reason="the bench framework (touchstream.bench.stores) is not merged here yet")

from replays.progress import ProgressBar
from replays.rebuild import compare
from touchstream.bench import projections as projections_bench
from touchstream.bench import timeline as timeline_bench
from touchstream.bootstrap import Dependencies
from touchstream.settings import load
from touchstream.wiring import build_hub


def test_timeline_scenario_reports_model_and_http_figures() -> None:
    args = argparse.Namespace(store="sqlite", touchpoints=300, seconds=0.3, connections=2,
                              account_contacts=6, account_touchpoints=30)
    report = timeline_bench.run(args)
    assert report["scenario"] == "timeline" and report["store"] == "sqlite"
    assert report["figures"]["pages"] >= 6
    assert {"page_p50_ms", "page_p99_ms", "http_page_p99_ms"} <= set(report["figures"])
    assert report["ratios"]["http_vs_trivial"] > 0
    assert report["figures"]["account_pages"] >= 2 and report["figures"]["account_page_p99_ms"] > 0
    # the console's customer page, timed at the server
    assert report["figures"]["console_page_p99_ms"] >= report["figures"]["console_page_p50_ms"] > 0
    assert report["figures"]["console_page_bytes"] > 1000
    assert report["ratios"]["console_page_p99_vs_200ms"] > 0


def test_projections_scenario_reports_rebuild_lag_and_rss() -> None:
    args = argparse.Namespace(store="sqlite", events=600, customers=5, lag_samples=5,
                              business_share=0.2, workers=2)
    report = projections_bench.run(args)
    figures = report["figures"]
    assert figures["customer_events"] == figures["events"] >= 600 - 5 * 2
    # a fifth of the history is business events, so the business read models have work;
    # the rebuild is measured with every read model and with the core ones only
    assert 0.15 * figures["events"] <= figures["business_events"] <= 0.3 * figures["events"]
    assert figures["read_models"] == len(projections_bench.registry.PROJECTIONS)
    assert figures["rebuild_workers"] == 1  # a short log is filled by one process
    assert report["ratios"]["rebuild_core_vs_raw_read"] > 0
    # the fill's own read and decode, no rows: every customer event, as the ceiling reads
    assert figures["rebuild_read_events_per_s"] > 0 and report["ratios"]["rebuild_read_vs_raw_read"] > 0
    assert figures["peak_rss_mb"] > 0 and figures["lag_p99_ms"] >= figures["lag_p50_ms"] > 0
    assert report["ratios"]["rebuild_vs_raw_read"] > 0
    # the rows floor: the new generations' rows inserted again with no Python per row
    assert figures["rebuild_rows_floor_events_per_s"] > 0
    assert report["ratios"]["rebuild_rows_floor_vs_raw_read"] > 0
    # The same history on an unencrypted store, and the cost of decrypting it as a fraction.
    assert figures["plain_customer_events"] == figures["customer_events"]
    assert figures["plain_rebuild_events_per_s"] > 0 and figures["plain_raw_read_events_per_s"] > 0
    assert report["ratios"]["decryption_cost_rebuild"] > -1
    assert report["ratios"]["decryption_cost_raw_read"] > -1


def test_projections_targets_include_the_decryption_cost() -> None:
    assert projections_bench.TARGETS["decryption_cost_rebuild"] == ("<=", 0.15)


def test_projections_rows_floor_copies_exactly_the_rebuilt_rows(tmp_path: Path) -> None:
    settings = load({"TOUCHSTREAM_DATA": str(tmp_path / "data"),
                     "TOUCHSTREAM_DEFAULT_REGION": "GB"})
    hub = build_hub(settings)
    try:
        args = argparse.Namespace(events=300, customers=4, business_share=0.2)
        projections_bench._seed(hub, args, ProgressBar("seed", enabled=False), 0)
        deps = Dependencies(settings, hub=hub)
        source = deps.event_source()
        filled, _ = projections_bench._rebuild(deps, source)
        db, reader = deps.read_store.connect(), deps.read_store.connect()
        copies, seconds = projections_bench.copy_rows(db, reader, filled, source.head(),
                                                      batch=50)
        assert seconds > 0
        for (p, generation), (q, copy) in zip(filled, copies, strict=True):
            assert p is q and copy != generation
            with db.snapshot():
                assert compare(db, p, generation, copy, source.head()).equal, p.name
        reader.close()
        db.close()
        source.close()
    finally:
        hub.close()
