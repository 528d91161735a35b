"""``touchstream bench phone`` end to end on a tiny run (shape only: speed is measured by
the benchmark itself, never asserted in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_phone_json_reports_callbacks_and_screen_pop(tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    done = subprocess.run(
        [sys.executable, "-m", "touchstream.cli", "bench", "phone", "--json",
         "--customers", "60", "--callers", "6", "--callbacks", "48", "--rounds", "2",
         "--pops", "30", "--concurrency", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TOUCHSTREAM_DATA": str(data)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["scenario"], report["store"]) == ("phone", "sqlite")
    assert {"screen_pop_p50_ms", "screen_pop_p99_ms", "callbacks_per_s",
            "trivial_requests_per_s"} <= set(report["figures"])
    assert set(report["ratios"]) == {"callbacks_vs_trivial", "screen_pop_p99_vs_10ms"}
    assert all(v > 0 for v in report["figures"].values())
    assert all(k.endswith(("_per_s", "_ms", "_s")) for k in report["figures"])
    assert not data.exists()  # fresh temporary stores, never the user's data
