"""Read-model queries on PostgreSQL run on a bounded set of threads (one connection each)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

from read_api.dependencies import READ_THREADS, ReadDeps


def test_concurrent_postgres_queries_use_at_most_read_threads_threads() -> None:
    # Each thread keeps its own read-store connection: 40 threads per process, times
    # workers and servers, ran PostgreSQL out of connections (a 503 under load).
    views: Any = SimpleNamespace(store=SimpleNamespace(dialect="postgres"))
    deps = ReadDeps(views, authorize=lambda *roles: None)
    seen: set[int] = set()

    def query(k: int) -> int:
        seen.add(threading.get_ident())
        time.sleep(0.005)
        return k

    async def main() -> list[int]:
        return list(await asyncio.gather(*(deps.call(query, k) for k in range(40))))

    try:
        assert asyncio.run(main()) == list(range(40))
    finally:
        deps.queries.shutdown()
    assert threading.get_ident() not in seen and 1 <= len(seen) <= READ_THREADS
