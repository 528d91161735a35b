"""``touchstream import cdr`` SIGKILLed again and again: every row recorded exactly once.

Each run is killed at a random moment after it has recorded at least one batch
(so mid-save, between a save and its checkpoint, or mid-registration of a
first contact's prospect); the next run resumes from the checkpoint. After the
last, uninterrupted run every row is recorded once, every number has one
prospect holding all its calls, and nothing waits in quarantine.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain.customer import Customer
from tests.conftest import store_env
from tests.support.cli_fork import start_cli
from tests.support.hubs import make_hub

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20_000
CALLS_PER_NUMBER = 20  # consecutive rows share a number: one prospect each, 1,000 in all
KILLS = 20


def cdr_row(i: int) -> str:
    number = f"07700{900000 + i // CALLS_PER_NUMBER}"
    return (f'"","{number}","100","from-pstn","","SIP/trunk-{i}","SIP/201-{i}","Dial",'
            '"SIP/201","2026-11-24 09:00:00","2026-11-24 09:00:05","2026-11-24 09:01:05",65,60,'
            f'"ANSWERED","DOCUMENTATION","kill.{i}",""\n')


def start(env: dict[str, str], cdr: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "touchstream.cli", "import", "cdr", str(cdr), "--timezone", "UTC"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
    )


def mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def count_topic(hub: object, topic: str) -> int:
    recorder = hub.recorder  # type: ignore[attr-defined]
    total, start_id = 0, 1
    while batch := recorder.select_notifications(start_id, 5000, topics=[topic]):
        total += len(batch)
        start_id = batch[-1].id + 1
    return total


@pytest.mark.slow
def test_twenty_sigkills_during_a_cdr_import_record_every_row_exactly_once(
    tmp_path: Path
) -> None:
    env = store_env("sqlite", tmp_path / "data")
    cdr = tmp_path / "Master.csv"
    cdr.write_text("".join(cdr_row(i) for i in range(ROWS)))
    checkpoints = tmp_path / "data" / "checkpoints"
    rng = random.Random(20261130)
    kills = 0
    while kills < KILLS:
        before = max((mtime(p) for p in checkpoints.glob("*.json")), default=0)
        # Forked from the worker's warm CLI process: the run begins its work at once
        # instead of after a second of interpreter start-up (the final run is spawned).
        proc = start_cli(["import", "cdr", str(cdr), "--timezone", "UTC"],
                         {**os.environ, **env})
        deadline = time.monotonic() + 120
        while (proc.poll() is None and time.monotonic() < deadline
               and max((mtime(p) for p in checkpoints.glob("*.json")), default=0) == before):
            time.sleep(0.01)  # until this run has recorded a batch
        time.sleep(rng.uniform(0, 0.25))
        if proc.poll() is not None:
            break  # finished before the kill: too few rows for this machine
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        kills += 1
    assert kills == KILLS, "the import finished before it was killed twenty times"

    last = start(env, cdr)
    out, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    summary = json.loads(out)
    assert (summary["rejected"], summary["malformed"], summary["waiting_in_quarantine"]) \
        == (0, 0, 0)
    assert not (tmp_path / "data" / "quarantine" / "cdr.jsonl").exists()

    hub = make_hub(env)
    try:
        keys = [f"call|cdr:kill.{i}" for i in range(ROWS)]
        found = {}
        for at in range(0, ROWS, 500):
            found.update(hub.recorded_under(keys[at:at + 500]))
        assert sorted(found) == sorted(keys)
        assert all(len(r.event_ids) == 1 for r in found.values())
        assert count_topic(hub, get_topic(Customer.CallLogged)) == ROWS
        numbers = ROWS // CALLS_PER_NUMBER
        assert count_topic(hub, get_topic(Customer.Registered)) == numbers
        owners = {r.customer_id for r in found.values()}
        assert len(owners) == numbers
        for n in rng.sample(range(numbers), 20):  # each number's calls on its one prospect
            owner = hub.find_by_contact("phone", f"07700{900000 + n}")
            assert owner is not None
            mine = keys[n * CALLS_PER_NUMBER:(n + 1) * CALLS_PER_NUMBER]
            assert {found[k].customer_id for k in mine} == {str(owner)}
    finally:
        hub.close()
