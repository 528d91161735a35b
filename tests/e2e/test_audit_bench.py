"""``touchstream bench audit`` end to end at a tiny size (figures reported, not asserted)."""

from __future__ import annotations

import argparse

from touchstream.bench import audit as audit_bench


def test_audit_scenario_reports_seal_verify_proof_and_read_audit_figures() -> None:
    args = argparse.Namespace(store="sqlite", events=900, new=30, customers=4, sample=200,
                              proofs=3, timeline_touchpoints=120, timeline_seconds=0.6,
                              timeline_connections=2)
    report = audit_bench.run(args)
    figures, ratios = report["figures"], report["ratios"]
    assert report["scenario"] == "audit" and figures["events"] == 900
    assert 0 < figures["events_through_write_model"] <= 200  # the rest in bulk
    assert figures["verify_incremental_events_read"] == figures["new_events"] >= 30
    assert figures["inclusion_proof_bytes"] > 0 and figures["consistency_proof_bytes"] > 0
    assert ratios["verify_vs_raw_sha256"] > 0
    assert figures["timeline_access_records"] > 0 and ratios["timeline_audited_vs_unaudited"] > 0
