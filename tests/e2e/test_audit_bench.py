"""``touchstream bench audit`` end to end at a tiny size (figures reported, not asserted)."""

from __future__ import annotations

import argparse

from touchstream.bench import audit as audit_bench


def test_audit_scenario_reports_seal_verify_and_proof_figures() -> None:
    args = argparse.Namespace(store="sqlite", events=400, new=30, customers=4, proofs=3)
    report = audit_bench.run(args)
    figures = report["figures"]
    assert report["scenario"] == "audit" and figures["events"] >= 400 - 4 * 2
    assert figures["verify_incremental_events_read"] == figures["new_events"] >= 30
    assert figures["inclusion_proof_bytes"] > 0 and figures["consistency_proof_bytes"] > 0
    assert report["ratios"]["verify_vs_raw_sha256"] > 0
