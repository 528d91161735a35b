"""``touchstream serve`` as a real process: uvicorn, real sockets, concurrent clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.conftest import store_env
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    env: dict[str, str]
    token: str
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = store_env("sqlite", tmp_path / "data")
    keys = open_key_store(settings_mod.load(env))
    _, token = keys.create("adapter", name="pbx")
    keys.close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchstream.cli", "serve", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    try:
        yield Server(url=url, env=env, token=token, proc=proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_concurrent_duplicate_posts_record_one_event(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    register = httpx.post(f"{server.url}/commands/register-customer", headers=headers, json={
        "name": "Grace Hopper", "source_key": "reg-grace",
        "contact_points": [{"kind": "phone", "value": "+44 113 496 0123"}]})
    assert register.status_code == 201, register.text
    body = {"call_id": "CA-dup", "from_number": "+44 113 496 0123", "outcome": "answered",
            "occurred_at": "2025-01-02T03:04:05+00:00"}

    def deliver(_: int) -> httpx.Response:
        return httpx.post(f"{server.url}/commands/log-call", json=body, headers=headers,
                          timeout=30)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(deliver, range(16)))
    assert sorted(r.status_code for r in results) == [200] * 15 + [201]
    assert len({tuple(r.json()["event_ids"]) for r in results}) == 1
    hub = make_hub(server.env)
    try:
        calls = [e for e in hub.stream(UUID(register.json()["customer_id"]))
                 if type(e).__name__ == "CallLogged"]
    finally:
        hub.close()
    assert len(calls) == 1


def test_serve_shuts_down_gracefully_on_sigterm(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM is expected.
    assert server.proc.wait(timeout=15) in (0, -signal.SIGTERM)
    log = server.proc.stderr.read().decode() if server.proc.stderr else ""
    assert "Application shutdown complete" in log, log
