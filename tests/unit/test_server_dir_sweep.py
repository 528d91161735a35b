"""Embedded PostgreSQL folders left by deleted checkouts are removed; live ones never."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from touchstream.bench import pg


def _folder(tmp: Path, name: str, *, owner: str | None, pid: int | None,
            age_s: float) -> Path:
    folder = tmp / name
    (folder / "pgdata").mkdir(parents=True)
    if owner is not None:
        (folder / "checkout").write_text(owner)
    if pid is not None:
        (folder / "pgdata" / "postmaster.pid").write_text(f"{pid}\n/some/pgdata\n")
    old = time.time() - age_s
    os.utime(folder, (old, old))
    return folder


def test_only_folders_of_gone_checkouts_without_a_server_are_swept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live_checkout = tmp_path / "clone" / "postgres.py"
    live_checkout.parent.mkdir()
    live_checkout.write_text("")
    hour = 3600.0
    gone = _folder(tmp_path, "ts-pg-0-aaaa", owner="/nowhere/postgres.py", pid=None, age_s=hour)
    unmarked = _folder(tmp_path, "ts-pg-0-bbbb", owner=None, pid=None, age_s=hour)
    dead_server = _folder(tmp_path, "ts-pg-0-cccc", owner="/nowhere/x.py", pid=2**22 + 7,
                          age_s=hour)
    running = _folder(tmp_path, "ts-pg-0-dddd", owner="/nowhere/y.py", pid=os.getpid(),
                      age_s=hour)
    still_used = _folder(tmp_path, "ts-pg-0-eeee", owner=str(live_checkout), pid=None,
                         age_s=hour)
    starting = _folder(tmp_path, "ts-pg-0-ffff", owner="/nowhere/z.py", pid=None, age_s=5)
    other_prefix = _folder(tmp_path, "other-0-aaaa", owner=None, pid=None, age_s=hour)

    base = pg.server_dir("ts-pg-0", "1234", live_checkout)

    assert base == tmp_path / "ts-pg-0-1234"
    assert (base / "checkout").read_text() == str(live_checkout)
    assert not gone.exists() and not unmarked.exists() and not dead_server.exists()
    assert running.exists() and still_used.exists() and starting.exists()
    assert other_prefix.exists()
    # the folder in use is kept on the next run of the same checkout
    assert pg.server_dir("ts-pg-0", "1234", live_checkout) == base and base.exists()
