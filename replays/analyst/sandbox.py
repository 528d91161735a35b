"""The child process an analyst's file runs in during a one-off replay.

It is given events over a one-way pipe and sends rows back over another; it
gets no store, no settings, no keys. Before the analyst's file runs, an audit
hook (PEP 578) refuses what a replay must never do: import the write model,
the channels or the composition root; open a file for writing; open a
socket; start a process; connect to SQLite. The refusal is an exception in
the handler, so the run stops there with the position and the traceback, and
the parent discards what was written so far.

An audit hook is a guard against mistakes and casual misuse, not a security
boundary against hostile code (native extensions can bypass it): the README
says so. The hub's data is safe from the child because the child never has
it: only decoded events reach it, and only rows leave it.
"""

from __future__ import annotations

import os
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

# Top-level packages a replay handler may not import (ours that write or talk to
# the world, drivers, network and process libraries).
BLOCKED_IMPORTS = frozenset({
    "commands", "channels", "touchstream", "read_api", "projections", "replays",
    "psycopg", "psycopg_pool", "sqlite3", "_sqlite3", "kurrentdbclient", "esdbclient",
    "smtplib", "aiosmtplib", "imaplib", "imapclient", "poplib", "ftplib", "telnetlib",
    "socket", "_socket", "ssl", "_ssl", "select", "selectors", "asyncio", "http", "urllib",
    "urllib3", "requests", "httpx", "subprocess", "_posixsubprocess", "multiprocessing",
    "concurrent", "ctypes", "_ctypes", "webbrowser", "shutil", "tempfile",
})
# Audit events refused outright (prefix match).
BLOCKED_EVENTS = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.remove", "os.unlink", "os.rename",
    "os.replace", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.link",
    "os.symlink", "os.utime", "os.putenv", "os.unsetenv", "shutil.", "sqlite3.connect",
    "ctypes.", "urllib.Request", "http.client.connect", "smtplib.", "imaplib.", "ftplib.",
    "webbrowser.", "os.chdir", "os.fchmod", "os.fchown",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SandboxViolation(PermissionError):
    """Raised inside the sandbox when a handler tries something a replay may not do."""


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "import":
        top = str(args[0]).split(".")[0]
        if top in BLOCKED_IMPORTS:
            raise SandboxViolation(f"a replay may not import {args[0]!r}")
    elif event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes:
            raise SandboxViolation(f"a replay may not write files ({path!r})")
    elif event.startswith(BLOCKED_EVENTS):
        raise SandboxViolation(f"a replay may not do {event!r}")


def child_main(source: str, filename: str, inbox: Connection, outbox: Connection) -> None:
    """Entry point of the replay child: load the file under the guard, then turn each
    batch of ``(position, event)`` into rows until ``None`` arrives."""
    # Imported before the guard: the child's own machinery.
    from projections.analyst.spec import load_spec

    for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED_IMPORTS]:
        # Already loaded by the interpreter or multiprocessing: a handler's
        # ``import`` of them must go through the guard again, not the cache.
        if name.split(".")[0] not in ("multiprocessing", "socket", "_socket", "select",
                                      "selectors"):
            del sys.modules[name]
    sys.addaudithook(_guard)
    try:
        spec = load_spec(source, filename)
    except BaseException as exc:  # noqa: BLE001 -- reported to the parent, whatever it is
        outbox.send(("spec-error", f"{type(exc).__name__}: {exc}",
                     traceback.format_exc()))
        return
    outbox.send(("ready", spec.name, spec.columns))
    while True:
        batch = inbox.recv()
        if batch is None:
            outbox.send(("done",))
            return
        rows: list[tuple[Any, ...]] = []
        for position, event in batch:
            try:
                rows.extend(spec.rows(position, event))
            except BaseException:  # noqa: BLE001 -- the run stops here, with the traceback
                outbox.send(("error", position, type(event).__name__, traceback.format_exc()))
                return
        outbox.send(("rows", rows))
