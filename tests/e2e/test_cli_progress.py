"""Long CLI work draws a progress bar (rate, ETA) on a terminal; never into a pipe or
with ``--json``. Each command runs twice: stderr on a real pseudo-terminal, then piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import store_env
from tests.support.terminal import ROOT, run_with_terminal_stderr


def piped(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "touchstream.cli", *args], cwd=ROOT,
                          env={**os.environ, **env}, input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)


def test_demo_backfill_and_reading_show_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    code, out, terminal = run_with_terminal_stderr(env, "demo", "--customers", "2", "--years", "1")
    assert code == 0, terminal
    assert "demo [" in terminal and "cmd/s" in terminal and "ETA" in terminal
    assert json.loads(out)["recorded_events"] > 0
    quiet = piped(env, "demo", "--customers", "3", "--years", "1")
    assert quiet.returncode == 0 and "ETA" not in quiet.stderr and "\r" not in quiet.stderr

    lines = "\n".join(json.dumps({"kind": "call", "call_id": f"b{i}",
                                  "from_number": "+44 131 496 0555"}) for i in range(40))
    code, out, terminal = run_with_terminal_stderr(env, "backfill", "-", stdin=lines)
    assert code == 0, terminal
    assert "backfill [" in terminal and "40/40" in terminal and "ETA" in terminal
    assert json.loads(out)["recorded"] == 40

    found = json.loads(piped(env, "customer", "find", "--phone", "0131 496 0555").stdout)
    code, _, terminal = run_with_terminal_stderr(env, "timeline", found["customer_id"])
    assert code == 0 and "updating read models [" in terminal, terminal
    code, out, terminal = run_with_terminal_stderr(env, "timeline", found["customer_id"],
                                                   "--json")
    assert code == 0 and "updating read models" not in terminal, "--json stays quiet"
    assert len(out.splitlines()) == 20


def test_bench_set_up_shows_a_bar_unless_json(tmp_path: Path) -> None:
    env = {"TOUCHSTREAM_DATA": str(tmp_path / "unused")}
    args = ("bench", "timeline", "--touchpoints", "300", "--seconds", "0.2",
            "--connections", "1", "--account-contacts", "3", "--account-touchpoints", "10")
    code, out, terminal = run_with_terminal_stderr(env, *args)
    assert code == 0, terminal
    assert "timeline set-up [" in terminal and "ETA" in terminal
    code, out, terminal = run_with_terminal_stderr(env, *args, "--json")
    assert code == 0 and "set-up" not in terminal, terminal
    assert json.loads(out)["scenario"] == "timeline"


def test_imports_count_rows_on_a_terminal(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    cdr = ROOT / "tests" / "fixtures" / "cdr" / "Master.csv"
    code, out, terminal = run_with_terminal_stderr(
        env, "import", "cdr", str(cdr), "--checkpoint", str(tmp_path / "cdr.json"))
    assert code in (0, 1), terminal  # 1: the fixture holds rows meant to be quarantined
    assert "import cdr " in terminal and "rows/s" in terminal
    assert json.loads(out)
    visits = "\n".join(json.dumps({"visit_id": f"v{i}", "visit_kind": "office", "staff": "jo",
                                   "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"})
                       for i in range(3))
    code, out, terminal = run_with_terminal_stderr(env, "import", "visits", "-", stdin=visits)
    assert "import visits " in terminal and "lines/s" in terminal, terminal
    quiet = piped(env, "import", "visits", "-", stdin=visits)
    assert "lines/s" not in quiet.stderr
