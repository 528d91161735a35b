"""``touchstream projections`` as real processes: SIGKILL mid-run, SIGTERM, rebuild, status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from commands import messages as m
from projections.store import ReadStore
from tests.support.cli_fork import run_cli, start_cli
from tests.support.demo import T0, seed_demo
from tests.support.hubs import make_hub
from tests.support.terminal import run_with_terminal_stderr
from touchstream import settings as settings_mod

ROOT = Path(__file__).resolve().parents[2]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env})


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "touchstream.cli", "projections", "run",
                             *args], cwd=ROOT, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def positions(store: ReadStore) -> dict[str, int]:
    db = store.connect()
    try:
        return {r[0]: r[1] for r in db.all("SELECT name, position FROM ts_projection WHERE live=1")}
    except Exception:  # noqa: BLE001 - not created yet
        return {}
    finally:
        db.close()


def wait_until(cond: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkilled_worker_resumes_with_no_row_missing_or_doubled(sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    ids = seed_demo(hub)
    for i in range(700):
        hub.execute(m.LogCall(customer_id=ids["bob"], call_id=f"k{i}",  # type: ignore[arg-type]
                              summary=f"call {i}", occurred_at=T0))
    head = int(hub.recorder.max_notification_id())
    hub.close()
    store = ReadStore(settings_mod.load(sqlite_env).read_store)
    kills = 0
    for threshold in (head // 5, head // 2, (head * 4) // 5):
        # forked from the worker's warm CLI process (no interpreter start-up before the
        # work); the last worker, whose output is read, is spawned
        killed = start_cli(["projections", "run", "--batch", "3"], {**os.environ, **sqlite_env})
        wait_until(lambda t=threshold: min(positions(store).values() or [0]) >= t)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
        kills += 1
        assert min(positions(store).values()) < head, "finished before the kill"
    worker = start_worker(sqlite_env)
    wait_until(lambda: positions(store) and min(positions(store).values()) >= head)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=20)
    assert worker.returncode == 0 and "stopped" in err, err
    assert kills == 3

    verify = cli(sqlite_env, "projections", "rebuild", "timeline", "directory", "summary",
                 "--verify-only")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": equal to live") == 3, verify.stdout
    db = store.connect()
    gen = db.scalar("SELECT generation FROM ts_projection WHERE name='summary' AND live=1")
    touches = db.scalar(f"SELECT touches FROM summary_g{gen}_channel "
                        "WHERE customer_id=? AND channel='phone'", (ids["bob"],))
    tgen = db.scalar("SELECT generation FROM ts_projection WHERE name='timeline' AND live=1")
    calls = db.scalar(f"SELECT COUNT(*) FROM timeline_g{tgen}_entry WHERE customer_id=? "
                      "AND kind='call'", (ids["bob"],))
    db.close()
    assert touches == calls == 700


def test_rebuild_cli_swaps_reports_and_verify_names_the_corrupted_row(
        sqlite_env: dict[str, str]) -> None:
    hub = make_hub(sqlite_env)
    seed_demo(hub)
    hub.close()
    code, stdout, terminal = run_with_terminal_stderr(sqlite_env, "projections", "rebuild",
                                                      "timeline")
    assert code == 0, terminal
    assert "swapped in" in stdout and "ev/s" in terminal and "ETA" in terminal
    status = json.loads(cli(sqlite_env, "projections", "status", "--json").stdout)
    assert [(s["name"], s["generation"], s["lag_events"]) for s in status] == [
        ("timeline", 2, 0)]

    store = ReadStore(settings_mod.load(sqlite_env).read_store)
    db = store.connect()
    db.execute("UPDATE timeline_g2_entry SET subject='tampered' WHERE kind='visit'")
    position = db.scalar("SELECT position FROM timeline_g2_entry WHERE kind='visit'")
    db.close()
    verify = cli(sqlite_env, "projections", "rebuild", "timeline", "--verify-only")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "DIFFERENT (1 rows)" in verify.stdout
    assert f"entry [position={position}]" in verify.stdout and "'tampered'" in verify.stdout
    unknown = cli(sqlite_env, "projections", "rebuild", "nosuch")
    assert unknown.returncode == 2 and "unknown read model" in unknown.stderr
