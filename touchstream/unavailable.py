"""A store that cannot be reached answers 503 with ``Retry-After``, never 500.

Store-unavailable conditions, whichever store (events, read models, API keys):
connection refused or reset, a server shutting down (``AdminShutdown``), a pool
wait that timed out (``PoolTimeout`` and ``TooManyRequests`` are
``psycopg.OperationalError``), a PostgreSQL lock wait over ``lock_timeout``, and
a SQLite file locked past its timeout. The eventsourcing library wraps the same
conditions in its ``OperationalError``/``InterfaceError``. Each wait is bounded by
``TOUCHSTREAM_STORE_TIMEOUT``, so the answer comes within that time.

Other SQLite ``OperationalError``s (no such table, disk I/O) are faults, not
outages: they stay 500.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import Request
from fastapi.responses import Response

from projections.store import ReadStoreError
from touchstream.http_errors import error_response

# Registered with ``app.add_exception_handler`` for each of these (and subclasses).
STORE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
    sqlite3.OperationalError, ReadStoreError,
)
_SQLITE_BUSY = ("locked", "busy")


def is_store_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means "the store is unavailable now, retry later"."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sqlite3.OperationalError):
            return any(word in str(cause).lower() for word in _SQLITE_BUSY)
        if isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError,
                              ReadStoreError)):
            return True
        cause = cause.__cause__
    # The library's errors without a driver cause (e.g. an exhausted retry).
    return isinstance(exc, (OperationalError, InterfaceError))


def store_unavailable_handler(
    retry_after_s: int,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The exception handler: 503 + ``Retry-After`` for an outage, re-raise otherwise."""

    async def answer(_: Request, exc: Exception) -> Response:
        if not is_store_unavailable(exc):
            raise exc
        return error_response(503, f"store unavailable, retry later: {exc}",
                              headers={"Retry-After": str(retry_after_s)})

    return answer
