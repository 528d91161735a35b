"""The staff console's customer page, timed at the server (``bench timeline`` runs it).

The first screen of ``/console/customers/{id}`` (summary, actions, the first timeline
page, rendered HTML) for the bench's big customer, requested ``samples`` times through
the real app in this process: a signed-in session, the read audit on (each page
appends a durable access record first, as served). Time runs from the ASGI call to the
last body byte, so it is the server's time without a network or client in it.
Target: p99 under 200 ms at 100,000 events.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from touchstream.adapters.keys import KeyStore
from touchstream.app import create_app
from touchstream.bootstrap import Dependencies
from touchstream.console import console_routes
from touchstream.console.sessions import COOKIE, IDLE_S

TARGET_MS = 200.0


async def _get(app: Any, path: str, cookie: str) -> tuple[int, int]:
    """One GET through the ASGI app: (status, body bytes)."""
    sent = False
    status = 0
    size = 0
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("bench", 80),
             "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"bench"), (b"cookie", f"{COOKIE}={cookie}".encode())]}
    await app(scope, receive, send)
    return status, size


def first_screen_ms(deps: Dependencies, keys: KeyStore, customer_id: str,
                    samples: int = 50) -> dict[str, Any]:
    """p50/p99 server time of the console's customer page for ``customer_id``."""
    key, _ = keys.create("agent", None, "bench-console")
    app = create_app(deps, routers=[console_routes])
    # the store the console itself reads (PostgreSQL when the stores are: a SQLite
    # file's session was unknown there and the page answered 303)
    sessions = deps.console_sessions(IDLE_S)
    cookie = sessions.start(key.id)
    path = f"/console/customers/{customer_id}"

    async def measure() -> tuple[list[float], int]:
        times: list[float] = []
        size = 0
        for _ in range(samples + 3):
            started = time.perf_counter()
            status, size = await _get(app, path, cookie)
            times.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"console page answered {status}")
        return times[3:], size  # the first few warm caches and templates

    try:
        times, size = asyncio.run(measure())
    finally:
        sessions.close()
    ordered = sorted(times)
    return {"console_page_p50_ms": round(statistics.median(times) * 1e3, 2),
            "console_page_p99_ms": round(ordered[min(len(ordered) - 1,
                                                     int(0.99 * len(ordered)))] * 1e3, 2),
            "console_page_bytes": size, "console_page_samples": len(times)}
