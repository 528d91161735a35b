"""Operations on real ``touchstream serve`` processes: metrics summed over workers, JSON
logs without personal content, the screen-pop across processes, draining on SIGTERM.

One data folder (SQLite) served by two processes: ``A`` with ``--workers 2`` and ``B``
with one worker and no projections — as two hosts on one store would be.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from projections.store import ReadStore
from replays.audit import access as access_log
from tests.conftest import store_env
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.adapters.keys import open_key_store

ROOT = Path(__file__).resolve().parents[2]
CTI_SECRET = "fleet-cti-secret"
NAME = "Zebedee Quorthwaite"  # personal content that must never reach a log line
PHONE = "+44 113 496 0777"
PHONE_E164 = "+441134960777"
EMAIL = "zebedee.quorthwaite@example.org"


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(env: dict[str, str], log: Path, *args: str) -> Proc:
    port = _free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "touchstream.cli", "serve", "--port", str(port), *args],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    # a deadline, not a wait: two workers importing everything on a loaded 2-core CI
    # machine were measured at up to ~90 s
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Proc(url, proc, log)
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(Proc(url, proc, log))
            pytest.fail(f"server did not start: {log.read_text()}")
        time.sleep(0.05)


def stop(p: Proc) -> int:
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGTERM)
        try:
            p.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()
    return int(p.proc.returncode)


@dataclass
class Fleet:
    env: dict[str, str]
    a: Proc
    b: Proc
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_env(data: Path) -> dict[str, str]:
    return {**store_env("sqlite", data), "TOUCHSTREAM_CTI_SECRET": CTI_SECRET,
            "TOUCHSTREAM_LOG_FORMAT": "json"}


def make_keys(env: dict[str, str], *roles: str) -> dict[str, str]:
    keys = open_key_store(settings_mod.load(env))
    try:
        return {role: keys.create(role, name=f"fleet-{role}")[1] for role in roles}
    finally:
        keys.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    env = make_env(root / "data")
    tokens = make_keys(env, "adapter", "agent", "monitoring")
    a = start(env, root / "a.log", "--workers", "2")
    try:
        b = start(env, root / "b.log", "--no-projections")
    except BaseException:
        stop(a)
        raise
    try:
        yield Fleet(env, a, b, tokens)
    finally:
        stop(b)
        stop(a)


def cti(url: str, event: dict[str, Any], secret: str = CTI_SECRET) -> httpx.Response:
    raw = json.dumps(event).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return httpx.post(f"{url}/webhooks/cti", content=raw, timeout=30, headers={
        "Content-Type": "application/json", "X-Touchstream-Timestamp": ts,
        "X-Touchstream-Signature": f"sha256={sig}"})


def new_call(call_id: str) -> dict[str, Any]:
    return {"event": "newCall", "callId": call_id, "from": PHONE, "to": "100",
            "direction": "inbound", "queue": "support",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}


def scrape(fleet: Fleet) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{fleet.a.url}/metrics", headers=fleet.auth("monitoring"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def ada(fleet: Fleet) -> str:
    """A customer registered on A, with personal content the logs must not show."""
    r = httpx.post(f"{fleet.a.url}/commands/register-customer", headers={
        **fleet.auth("adapter"), "X-Request-ID": "req-register-1"}, timeout=30, json={
        "name": NAME, "source_key": "fleet-reg", "contact_points": [
            {"kind": "phone", "value": PHONE}, {"kind": "email", "value": EMAIL}]})
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-ID"] == "req-register-1"
    return str(r.json()["customer_id"])


def test_metrics_count_a_scripted_workload_over_both_workers(fleet: Fleet, ada: str) -> None:
    before = scrape(fleet)
    health = [httpx.get(f"{fleet.a.url}/health", timeout=10) for _ in range(20)]
    assert {r.status_code for r in health} == {200}
    call = {"customer_id": ada, "call_id": "fleet-call-1", "outcome": "answered",
            "occurred_at": "2026-01-02T03:04:05+00:00"}
    for body in (call, {**call, "call_id": "fleet-call-2"}, call):  # the third: a duplicate
        r = httpx.post(f"{fleet.a.url}/commands/log-call", headers=fleet.auth("adapter"),
                       json=body, timeout=30)
        assert r.status_code in (200, 201), r.text
    assert cti(fleet.a.url, new_call("fleet-bad"), secret="wrong").status_code == 403
    assert cti(fleet.a.url, new_call("fleet-metrics-call")).status_code == 200
    after = [scrape(fleet) for _ in range(4)]  # any worker may answer: all sum both

    for samples in after:
        def delta(name: str, **labels: str) -> float:
            return value(samples, name, **labels) - value(before, name, **labels)  # noqa: B023

        assert delta("touchstream_http_requests_total", route="/health", method="GET",
                     status="200") == 20
        assert delta("touchstream_http_request_duration_seconds_count", route="/health",
                     method="GET") == 20
        assert delta("touchstream_commands_total", kind="LogCall", outcome="recorded") == 2
        assert delta("touchstream_commands_total", kind="LogCall", outcome="duplicate") == 1
        assert delta("touchstream_commands_total", kind="RecordCallStep",
                     outcome="recorded") == 1  # through the webhooks' group commit
        assert delta("touchstream_events_appended_total") >= 3
        assert delta("touchstream_webhook_rejects_total", route="/webhooks/cti",
                     status="403") == 1
    assert value(after[-1], "touchstream_commands_total", kind="RegisterCustomer",
                 outcome="recorded") == 1
    head = value(after[-1], "touchstream_event_log_head")
    assert head >= 3
    positions = {dict(labels)["projection"]: v for (name, labels), v in after[-1].items()
                 if name == "touchstream_projection_position"}
    assert {"timeline", "summary", "directory"} <= set(positions)
    assert value(after[-1], "touchstream_quarantine_waiting", source="cdr") == 0
    deadline = time.monotonic() + 30  # the projections catch up: the lag falls to 0
    while value(scrape(fleet), "touchstream_projection_lag_events", projection="timeline"):
        assert time.monotonic() < deadline, "timeline lag never reached 0"
        time.sleep(0.1)


def test_metrics_need_a_monitoring_key(fleet: Fleet) -> None:
    assert httpx.get(f"{fleet.a.url}/metrics").status_code == 401
    r = httpx.get(f"{fleet.a.url}/metrics", headers=fleet.auth("agent"))
    assert r.status_code == 403 and "monitoring" in r.json()["detail"]


def test_json_logs_carry_request_ids_and_no_personal_content(fleet: Fleet, ada: str) -> None:
    r = httpx.get(f"{fleet.a.url}/screen-pop", params={"number": PHONE},
                  headers={**fleet.auth("agent"), "X-Request-ID": "bad id with spaces"})
    assert r.status_code == 200 and r.json()["known"]
    made = r.headers["X-Request-ID"]
    assert len(made) == 32 and made != "bad id with spaces"
    r = httpx.get(f"{fleet.a.url}/customers/{ada}/summary", headers={
        **fleet.auth("agent"), "X-Request-ID": "req-summary-1"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "req-summary-1"

    deadline = time.monotonic() + 10  # a line is written when its request ends
    while True:
        text = fleet.a.log.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        requests = {line.get("request_id"): line for line in lines if line["msg"] == "request"}
        if {"req-register-1", "req-summary-1", made} <= set(requests):
            break
        assert time.monotonic() < deadline, text[-2000:]
        time.sleep(0.05)
    register = requests["req-register-1"]
    assert (register["route"], register["status"], register["customer_id"]) == (
        "/commands/register-customer", 201, ada)
    assert register["key_id"].startswith("key_") and register["level"] == "info"
    assert requests["req-summary-1"]["route"] == "/customers/{customer_id}/summary"
    assert requests["req-summary-1"]["customer_id"] == ada
    assert requests[made]["route"] == "/screen-pop"
    for secret in (NAME, "Zebedee", "Quorthwaite", PHONE, PHONE_E164, "1134960777", EMAIL):
        assert secret not in text, secret


def test_a_call_recorded_through_one_process_pops_on_a_console_of_another(
        fleet: Fleet, ada: str) -> None:
    with httpx.Client(base_url=fleet.b.url, timeout=30) as console:
        page = console.get("/console/sign-in")
        signin = page.text.split('name="signin_token" value="', 1)[1].split('"', 1)[0]
        r = console.post("/console/sign-in", data={"signin_token": signin,
                                                   "api_key": fleet.tokens["agent"]})
        assert r.status_code == 303, r.text
        cards: list[str] = []
        listening = threading.Event()

        def read() -> None:
            with console.stream("GET", "/console/screen-pop/stream") as stream:
                for line in stream.iter_lines():
                    if line.startswith(": listening"):
                        listening.set()
                    if line.startswith("data:") and ada in line:
                        cards.append(line)
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert listening.wait(20)
        for attempt in range(50):  # the follower may still be at the head it started from
            assert cti(fleet.a.url, new_call(f"fleet-pop-{attempt}")).status_code == 200
            reader.join(0.2)
            if cards:
                break
        assert cards, "the call never popped on the other process's console"


def test_reads_over_three_server_processes_each_write_through_a_writer_process_into_one_chain(
        fleet: Fleet, ada: str) -> None:
    deadline = time.monotonic() + 30  # A's projections register ada's timeline
    while httpx.get(f"{fleet.a.url}/customers/{ada}/timeline", headers=fleet.auth("agent"),
                    timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "ada's timeline never appeared"
        time.sleep(0.1)
    ids = [f"fleet-read-{k}" for k in range(60)]

    def read(k: int) -> int:
        url = (fleet.a if k % 3 else fleet.b).url  # A's two workers and B at once
        return httpx.get(f"{url}/customers/{ada}/timeline", timeout=30, headers={
            **fleet.auth("agent"), "X-Request-ID": ids[k]}).status_code

    threads = [threading.Thread(target=lambda k=k: codes.append(read(k)))  # type: ignore[misc]
               for k in range(len(ids))]
    codes: list[int] = []
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * len(ids)
    db = ReadStore(settings_mod.load(fleet.env).read_store).connect()
    try:
        assert access_log.verify_chain(db) == []
        found = [r.entry.request_id for r in access_log.records(db, customer_id=ada,
                                                                limit=100_000)]
    finally:
        db.close()
    assert sorted(r for r in found if r.startswith("fleet-read-")) == sorted(ids)
    parent = _parents()
    writers = [pid for pid in parent
               if b"replays.audit.access_writer" in _read_bytes(Path(f"/proc/{pid}/cmdline"))]
    a_workers = {pid for pid, ppid in parent.items() if ppid == fleet.a.proc.pid}
    assert any(parent[w] == fleet.b.proc.pid for w in writers), "B's own writer process"
    assert any(parent[w] in a_workers for w in writers), "A's workers' writer processes"


def _parents() -> dict[int, int]:
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        text = _read_bytes(stat)
        if text:
            found[int(stat.parent.name)] = int(text.rsplit(b")", 1)[1].split()[1])
    return found


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_ready_keeps_a_host_whose_read_models_lag_out_of_the_balancer(
        sqlite_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from commands import messages as m
    from projections.engine import ensure_live
    from projections.registry import get
    from touchstream.app import create_app
    from touchstream.bootstrap import Dependencies

    hub = make_hub(sqlite_env)
    try:
        ada = hub.execute(m.RegisterCustomer(name="Lag", source_key="reg:lag")).customer_id
        for i in range(3):
            hub.execute(m.LogCall(customer_id=UUID(ada), call_id=f"lag-{i}",
                                  from_number="+442079460018"))
        head = int(hub.recorder.max_notification_id() or 0)
    finally:
        hub.close()
    for bound, status in ((head - 1, 503), (head, 200), (0, 200)):
        deps = Dependencies(settings_mod.load({**sqlite_env,
                                               "TOUCHSTREAM_READY_MAX_LAG": str(bound)}))
        db = deps.read_store.connect()
        try:
            ensure_live(db, get("timeline"))  # built, still at position 0
        finally:
            db.close()
        with TestClient(create_app(deps, services=[deps])) as client:
            r = client.get("/ready")
        assert r.status_code == status, (bound, r.text)
        if status == 503:
            assert r.headers["Retry-After"]
            assert r.json()["reason"] == (
                f"read model timeline is {head} events behind (bound {bound})")


def test_sigterm_drains_requests_in_flight(fleet: Fleet) -> None:
    """Last in this module: it stops process B (a second server start would cost more)."""
    server = fleet.b
    port = int(server.url.rsplit(":", 1)[1])
    register = json.dumps({"name": "Drained Customer", "source_key": "drain-reg",
                           "contact_points": [{"kind": "phone", "value": "+44 113 496 0999"}]})
    step = json.dumps({**new_call("drain-call"), "from": "+44 113 496 0999"}).encode()
    ts = str(int(time.time()))
    sig = hmac.new(CTI_SECRET.encode(), ts.encode() + b"." + step, hashlib.sha256).hexdigest()
    # the call step first: its customer is then created through the webhook group commit
    requests = [
        (f"POST /webhooks/cti HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         f"X-Touchstream-Timestamp: {ts}\r\nX-Touchstream-Signature: sha256={sig}\r\n"
         f"Content-Length: {len(step)}\r\n\r\n").encode() + step,
        (f"POST /commands/register-customer HTTP/1.1\r\nHost: x\r\n"
         f"Authorization: Bearer {fleet.tokens['adapter']}\r\nContent-Type: application/json\r\n"
         f"Content-Length: {len(register)}\r\n\r\n{register}").encode().replace(
             b"+44 113 496 0999", b"+44 113 496 0998"),
    ]
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in requests]
    for sock, raw in zip(socks, requests, strict=True):
        sock.sendall(raw[:-10])  # headers and most of the body: the request is in flight
    time.sleep(0.3)  # let the server read the headers
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):  # no new connection is taken meanwhile
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    answers = []
    for sock, raw in zip(socks, requests, strict=True):
        sock.sendall(raw[-10:])
        answers.append(sock.recv(65536).decode())
        sock.close()
    assert answers[0].startswith("HTTP/1.1 200"), answers[0]
    assert answers[1].startswith("HTTP/1.1 201"), answers[1]
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    said = [line["msg"] for line in lines]
    assert "Application shutdown complete." in said
    answered = [i for i, line in enumerate(lines) if line.get("route") in (
        "/webhooks/cti", "/commands/register-customer")]
    assert len(answered) == 2 and min(answered) > said.index("Shutting down"), said

    hub = make_hub(fleet.env)
    try:
        customer = hub.find_by_contact("phone", "+441134960999")
        assert customer is not None
        steps = [e for e in hub.stream(UUID(str(customer)))
                 if type(e).__name__ == "CallStepRecorded"]
        assert [e.call_id for e in steps] == ["drain-call"]
        assert hub.find_by_contact("phone", "+441134960998") is not None
    finally:
        hub.close()
