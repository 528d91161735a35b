"""``touchstream import cdr`` and ``touchstream import visits`` end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from uuid import UUID

from commands import messages as m
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cdr"


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env}, stdin=stdin)


def test_import_cdr_reports_quarantined_rows_and_a_second_run_records_nothing(
    tmp_path: Path
) -> None:
    env = store_env("sqlite", tmp_path / "data")
    path = tmp_path / "Master.csv"
    shutil.copy(FIXTURES / "Master.csv", path)
    first = cli(env, "import", "cdr", str(path), "--timezone", "Europe/London")
    assert first.returncode == 1, first.stderr
    assert "malformed" in first.stderr and "quarantined" in first.stderr
    summary = json.loads(first.stdout)
    assert (summary["recorded"], summary["malformed"]) == (4, 1)
    assert summary["deferred_bytes"] > 0
    second = cli(env, "import", "cdr", str(path))
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["rows"] == 0


def test_import_cdr_refuses_a_missing_file_and_an_unknown_timezone(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    missing = cli(env, "import", "cdr", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    path = tmp_path / "Master.csv"
    path.write_text("")
    bad_tz = cli(env, "import", "cdr", str(path), "--timezone", "Mars/Olympus")
    assert bad_tz.returncode == 2 and "time zone" in bad_tz.stderr


def test_offline_visits_sync_later_and_land_at_their_real_time(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    hub = make_hub(env)
    try:
        cid = hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada")).customer_id
        hub.execute(m.AddNote(customer_id=cid, text="recorded today", source_key="note:1"))
    finally:
        hub.close()
    visits = [
        {"customer_id": cid, "visit_id": "tablet-7:1", "visit_kind": "field", "staff": "jonas",
         "occurred_at": "2020-11-21T14:00:00+00:00", "outcome": "fixed"},
        {"customer_id": cid, "visit_id": "tablet-7:2", "visit_kind": "office", "staff": "jonas",
         "occurred_at": "2020-11-20T10:00:00+00:00"},
        {"customer_id": cid, "visit_id": "tablet-7:3", "visit_kind": "moon", "staff": "jonas"},
    ]
    lines = "\n".join(json.dumps(v) for v in visits) + "\n"
    first = cli(env, "import", "visits", "-", stdin=lines)
    assert first.returncode == 1 and "line 3" in first.stderr and "visit_kind" in first.stderr
    assert json.loads(first.stdout) == {"recorded": 2, "duplicates": 0, "failed": 1}
    again = cli(env, "import", "visits", "-", stdin=lines)
    assert json.loads(again.stdout) == {"recorded": 0, "duplicates": 2, "failed": 1}
    hub = make_hub(env)
    try:
        stream = list(hub.stream(UUID(cid)))
    finally:
        hub.close()
    visits_seen = [e for e in stream if type(e).__name__ == "VisitRecorded"]
    # Recorded after the note, but ordered by when they happened they come first.
    assert [e.occurred_at.day for e in visits_seen] == [21, 20]
    by_time = sorted(stream, key=lambda e: e.occurred_at)
    assert [type(e).__name__ for e in by_time][:2] == ["VisitRecorded", "VisitRecorded"]
    assert all(e.recorded_at > e.occurred_at for e in visits_seen)


def test_calls_command_prints_each_calls_summary_from_out_of_order_steps(tmp_path: Path) -> None:
    env = store_env("sqlite", tmp_path / "data")
    hub = make_hub(env)
    try:
        cid = hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada")).customer_id
        for step, seq, at in [("ended", 3, "09:05:00"), ("offered", 1, "09:00:00"),
                              ("answered", 2, "09:00:30")]:
            hub.execute(m.RecordCallStep(customer_id=cid, call_id="C1", step=step, sequence=seq,
                                         agent="mia" if step == "answered" else None,
                                         occurred_at=f"2024-01-02T{at}+00:00"))
    finally:
        hub.close()
    out = cli(env, "calls", cid)
    assert out.returncode == 0, out.stderr
    (summary,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (summary["state"], summary["outcome"], summary["wait_s"], summary["duration_s"],
            summary["agent"]) == ("ended", "answered", 30, 270, "mia")
    missing = cli(env, "calls", cid, "--call", "nope")
    assert missing.returncode == 4 and "no steps" in missing.stderr  # not found
