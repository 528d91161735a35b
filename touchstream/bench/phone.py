"""``touchstream bench phone``: signed Twilio status callbacks per second against a trivial
route of the same served app, and screen-pop latency with ``--customers`` customers.

On a fresh temporary store: ``--customers`` customers (each with a phone number
and one earlier call) are written in large batches through the aggregate, and
the read models are built to the head of the log. Then the app runs as
``touchstream serve`` (uvicorn, one worker) in a child process; this process
plays the provider and the agent's phone:

* callbacks: pre-signed status callbacks (distinct calls, four steps each,
  spread over ``--callers`` of those customers) and ``GET /health`` from
  ``--concurrency`` keep-alive connections, interleaved over ``--rounds``
  rounds so drift hits both. Every callback must be answered 200 ``recorded``.
* screen-pop: ``--pops`` sequential ``GET /screen-pop?number=…`` on one
  keep-alive connection (nine in ten known numbers in national format, one in
  ten unknown), p50/p99 of the full HTTP round trip.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import uuid5

from channels.phone.signatures import twilio_signature
from commands.hub import NAMESPACE
from commands.identity import contact_key
from domain.claims import ContactPointClaim
from domain.customer import Customer, Provenance
from touchstream import wiring
from touchstream.adapters.keys import open_key_store
from touchstream.bench.stores import fresh_settings
from touchstream.bootstrap import Dependencies
from touchstream.read_side import ProjectionService
from touchstream.settings import Settings

NAME = "phone"
TARGETS = {"callbacks_vs_trivial": (">=", 0.5), "screen_pop_p99_vs_10ms": ("<=", 1.0)}
TOKEN = "bench-twilio-auth-token"
BASE = "https://hub.bench.invalid"
STATUS_PATH = "/webhooks/twilio/voice/status"
LIFECYCLE = (("initiated", 0), ("ringing", 1), ("in-progress", 2), ("completed", 3))

Request = tuple[str, str, bytes, dict[str, str]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--callbacks", type=int, default=2_000,
                        help="signed status callbacks in all (default 2000)")
    parser.add_argument("--callers", type=int, default=200,
                        help="distinct caller numbers (customers) (default 200)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="keep-alive connections posting at once (default 4)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="trivial and callback batches alternate this many times (default 5)")
    parser.add_argument("--customers", type=int, default=100_000,
                        help="customers in the store for the screen-pop (default 100000)")
    parser.add_argument("--pops", type=int, default=2_000,
                        help="screen-pop lookups timed (default 2000)")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHSTREAM_")}
    env.update({
        "TOUCHSTREAM_DATA": str(settings.data_dir),
        "TOUCHSTREAM_EVENT_STORE": settings.event_store,
        "TOUCHSTREAM_READ_STORE": settings.read_store,
        "TOUCHSTREAM_DEFAULT_REGION": settings.default_region or "GB",
        "TOUCHSTREAM_TWILIO_AUTH_TOKEN": TOKEN,
        "TOUCHSTREAM_PUBLIC_BASE_URL": BASE,
    })
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(settings: Settings) -> Iterator[int]:
    """``touchstream serve`` in a child process; yields its port once /health answers."""
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    # The server logs a line per request: into a pipe nobody reads during the run, the
    # pipe filled after a few hundred requests and its event loop blocked in the write
    # (every client then timed out). A file takes them all; its tail explains a failure.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchstream.cli", "serve", "--port", str(port)],
        env={**_env(settings), "PYTHONPATH": str(root)}, cwd=root,
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError("the server exited: " + log.read().decode()[-2000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /health within 60 s")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def customer_number(i: int) -> str:
    """The i-th seeded customer's number (London, E.164)."""
    return f"+44207{i:07d}"


def seed(settings: Settings, customers: int) -> None:
    """``customers`` customers with a phone number (and its claim) and one past call each,
    then the read models built up to the head of the log (not measured)."""
    at = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    hub = wiring.build_hub(settings)
    try:
        batch: list[Customer | ContactPointClaim] = []
        for i in range(customers):
            def prov(part: str, i: int = i) -> Provenance:
                key = f"bench-phone:{i}:{part}"
                return Provenance(uuid5(NAMESPACE, key), at, "system", "internal", "bench",
                                  key, key, key)
            c = Customer.register(uuid5(NAMESPACE, f"bench-phone:{i}"), prov("reg"),
                                  name=f"Customer {i}", company="Bench Ltd")
            c.add_contact_point(prov("phone"), "phone", customer_number(i), None)
            c.record(Customer.CallLogged, prov("call"), call_id=f"seed-{i}",
                     from_number=customer_number(i), to_number=None, queue="support",
                     agent="mia", ivr_choices=[], outcome="answered", duration_s=60,
                     wait_s=10, recording_ref=None, summary="earlier call")
            # The number's claim, as registering the customer through the command path
            # makes: the callbacks then find this customer, not a new prospect.
            ckey = contact_key("phone", customer_number(i))
            claim = ContactPointClaim.open(hub.naming.claim(ckey), ckey)
            claim.claim(str(c.id))
            batch += [c, claim]
            if len(batch) >= 300:
                hub.save(*batch)
                batch = []
        if batch:
            hub.save(*batch)
        head = int(hub.recorder.max_notification_id() or 0)
        deps = Dependencies(settings, hub=hub)
        service = ProjectionService(deps)
        service.start()
        try:
            views = deps.read_views
            deadline = time.monotonic() + 1800
            while min(v.position() for v in (views.directory, views.summary,
                                             views.timeline)) < head:
                if time.monotonic() > deadline:
                    raise RuntimeError("read models did not catch up within 30 minutes")
                time.sleep(0.2)
        finally:
            service.stop()
    finally:
        hub.close()


def pop_requests(count: int, customers: int, token: str, rnd: random.Random) -> list[Request]:
    headers = {"Authorization": f"Bearer {token}"}
    out: list[Request] = []
    for _ in range(count):
        if rnd.random() < 0.9:
            national = "0" + customer_number(rnd.randrange(customers))[3:]
            number = f"{national[:3]} {national[3:7]} {national[7:]}"
        else:
            number = f"+44 161 {rnd.randrange(10**7):07d}"  # nobody has a Manchester number
        out.append(("GET", "/screen-pop?" + urlencode({"number": number}), b"", headers))
    return out


def signed_callbacks(first_call: int, count: int, callers: int) -> list[Request]:
    """``count`` distinct status callbacks (four steps per call), each signed."""
    out: list[Request] = []
    for i in range(count):
        call, step = divmod(first_call * 4 + i, 4)
        status, seq = LIFECYCLE[step]
        params = {
            "CallSid": f"CA{call:032d}", "AccountSid": "ACbench", "CallStatus": status,
            "SequenceNumber": str(seq), "Direction": "inbound", "To": "+442079460000",
            "From": customer_number(call % callers),
            "Timestamp": "Tue, 24 Nov 2026 09:00:00 +0000",
        }
        if status == "completed":
            params["CallDuration"] = "42"
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": twilio_signature(
                       TOKEN, BASE + STATUS_PATH, {k: [v] for k, v in params.items()})}
        out.append(("POST", STATUS_PATH, urlencode(params).encode(), headers))
    return out


def _fire(port: int, requests: Sequence[Request], concurrency: int) -> tuple[float, list[float]]:
    """Send all requests over ``concurrency`` keep-alive connections; (seconds, latencies)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(part: Sequence[Request]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        try:
            for method, path, body, headers in part:
                t0 = time.perf_counter()
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                mine.append(time.perf_counter() - t0)
                if response.status != 200 or (method == "POST" and b'"recorded"' not in payload) \
                        or (path.startswith("/screen-pop") and b'"number"' not in payload):
                    with lock:
                        errors.append(f"{path}: {response.status} {payload[:200]!r}")
                    return
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    parts = [requests[i::concurrency] for i in range(concurrency)]
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts if p]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed, latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    for name in ("callbacks", "callers", "concurrency", "rounds", "customers", "pops"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1")
    if args.callers > args.customers:
        raise ValueError("--callers cannot exceed --customers")
    per_round = max(4, args.callbacks // args.rounds // 4 * 4)
    with fresh_settings(args.store) as settings:
        started = time.perf_counter()
        seed(settings, args.customers)
        seed_s = time.perf_counter() - started
        keys = open_key_store(settings)
        try:
            token = keys.create("agent", None, "bench-phone")[1]
        finally:
            keys.close()
        with served(settings) as port:
            pops = pop_requests(args.pops, args.customers, token, random.Random(7))
            _fire(port, pops[: min(200, len(pops))], 1)  # warm-up, not measured
            _elapsed, pop_lat = _fire(port, pops, 1)
            trivial: list[Request] = [("GET", "/health", b"", {})] * per_round
            callback_time = trivial_time = 0.0
            callback_lat: list[float] = []
            next_call = 0
            for _ in range(args.rounds):
                batch = signed_callbacks(next_call, per_round, args.callers)
                next_call += per_round // 4
                elapsed, _lat = _fire(port, trivial, args.concurrency)
                trivial_time += elapsed
                elapsed, lat = _fire(port, batch, args.concurrency)
                callback_time += elapsed
                callback_lat += lat
    total = per_round * args.rounds
    figures = {
        "seed_and_build_s": seed_s,
        "screen_pop_p50_ms": statistics.median(pop_lat) * 1000,
        "screen_pop_p99_ms": _percentile(pop_lat, 0.99) * 1000,
        "callbacks_per_s": total / callback_time,
        "trivial_requests_per_s": total / trivial_time,
        "callback_p50_ms": statistics.median(callback_lat) * 1000,
        "callback_p99_ms": _percentile(callback_lat, 0.99) * 1000,
    }
    return {
        "scenario": NAME,
        "store": args.store,
        "figures": figures,
        "ratios": {
            "callbacks_vs_trivial": figures["callbacks_per_s"]
            / figures["trivial_requests_per_s"],
            "screen_pop_p99_vs_10ms": figures["screen_pop_p99_ms"] / 10.0,
        },
    }
