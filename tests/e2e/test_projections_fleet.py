"""Two ``projections run`` workers on different data folders share one PostgreSQL read store.

One owner per read model by lease: both workers hold a share, one is SIGKILLed
repeatedly during catch-up and restarted, the other takes its read models over
after the lease expires; in the end a rebuild proves nothing was applied twice
or skipped. Lean sizes: ~200 events, batches of 3, a 1.5 s lease.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from commands import messages as m
from projections.store import ReadStore
from tests.support.demo import T0, seed_demo
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.fleet.leases import PostgresLeases

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("timeline", "directory", "summary", "outbox")
CALLS = 160  # plus the demo seed: ~200 events, applied 3 at a time


def _worker(env: dict[str, str], data: Path, node: str, log: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "TOUCHSTREAM_DATA": str(data), "TOUCHSTREAM_FLEET_NODE": node,
            "TOUCHSTREAM_FLEET_LEASE": "1.5"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "touchstream.cli", "projections", "run",
                                 *NAMES, "--batch", "3"], cwd=ROOT, env=full, stdout=out,
                                stderr=subprocess.STDOUT)


def _positions(store: ReadStore) -> dict[str, int]:
    db = store.connect()
    try:
        return {r[0]: int(r[1]) for r in
                db.all("SELECT name, position FROM ts_projection WHERE live=1")}
    except Exception:  # noqa: BLE001 - the tracking table is not created yet
        return {}
    finally:
        db.close()


def _wait(cond: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def test_workers_share_the_read_models_and_take_over_a_killed_one(
        postgres_env: dict[str, str], tmp_path: Path) -> None:
    hub = make_hub(postgres_env)
    ids = seed_demo(hub)
    for i in range(CALLS):
        hub.execute(m.LogCall(customer_id=ids["bob"], call_id=f"k{i}",  # type: ignore[arg-type]
                              summary=f"call {i}", occurred_at=T0))
    head = int(hub.recorder.max_notification_id())
    hub.close()
    env = {k: v for k, v in postgres_env.items() if k != "TOUCHSTREAM_DATA"}
    env["TOUCHSTREAM_MASTER_KEY"] = _master_key(postgres_env)
    store = ReadStore(settings_mod.load(postgres_env).read_store)
    leases = PostgresLeases(postgres_env["TOUCHSTREAM_READ_STORE"])
    log = tmp_path / "workers.log"
    steady = _worker(env, tmp_path / "b", "w-b", log)
    victim = _worker(env, tmp_path / "a", "w-a", log)
    owners: set[str] = set()
    try:
        for share in (head // 5, head // 2, (head * 3) // 4):
            def shared(share: int = share) -> bool:
                found = {o.split(":")[0] for o in leases.holders("projection:").values()}
                owners.update(found)
                return min(_positions(store).values() or [0]) >= share

            _wait(shared)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            assert min(_positions(store).values()) < head, "caught up before the kill"
            victim = _worker(env, tmp_path / "a", "w-a", log)
        _wait(lambda: len(_positions(store)) == len(NAMES)
              and min(_positions(store).values()) >= head)
        # Every read model has an owner again. Not at once: a killed worker's leases lapse
        # before the others take them up at their next renewal, and a rebalance gives one
        # back before the other member takes it, so a look between the two sees it free.
        _wait(lambda: sorted(leases.holders("projection:"))
              == sorted(f"projection:{n}" for n in NAMES))

        def both_hold() -> bool:  # the share is rebalanced at each renewal
            owners.update(o.split(":")[0] for o in leases.holders("projection:").values())
            return owners == {"w-a", "w-b"}

        _wait(both_hold)
    finally:
        for proc in (steady, victim):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        leases.close()
    assert owners == {"w-a", "w-b"}, log.read_text()[-3000:]  # the work was shared
    verify = subprocess.run(
        [sys.executable, "-m", "touchstream.cli", "projections", "rebuild", *NAMES,
         "--verify-only"], cwd=ROOT, env={**os.environ, **postgres_env}, capture_output=True,
        text=True, timeout=180, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": equal to live") == len(NAMES), verify.stdout
    db = store.connect()
    gen = db.scalar("SELECT generation FROM ts_projection WHERE name='summary' AND live=1")
    touches = db.scalar(f"SELECT touches FROM summary_g{gen}_channel "
                        "WHERE customer_id=? AND channel='phone'", (ids["bob"],))
    tgen = db.scalar("SELECT generation FROM ts_projection WHERE name='timeline' AND live=1")
    calls = db.scalar(f"SELECT COUNT(*) FROM timeline_g{tgen}_entry WHERE customer_id=? "
                      "AND kind='call'", (ids["bob"],))
    db.close()
    assert touches == calls == CALLS  # none applied twice, none skipped


def _master_key(env: dict[str, str]) -> str:
    """The key the seeding generated in its data folder: the workers must share it."""
    return (Path(env["TOUCHSTREAM_DATA"]) / "master.key").read_text().strip()
