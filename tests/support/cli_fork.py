"""``touchstream …`` as a process forked from a warm one, for tests that run many commands.

A spawned ``python -m touchstream.cli`` spends about a second of CPU importing the
application before it does anything (more on a loaded 2-core machine), and the suite ran
hundreds of them. Here one *zygote* process per test worker (this module run as
``python -m tests.support.cli_fork``) imports every CLI module once and waits; each
``run_cli`` then forks a child of it that takes the call's arguments, environment,
working folder and standard streams (files) and runs ``touchstream.cli.main`` to its exit
status. The child is a process of its own, with real file descriptors, exit code and
signals, as a spawned one is; what it shares with the zygote is modules already imported
(nothing happens at import time in this code base) and nothing else: the zygote never
runs a command.

What this does not cover, and the tests that need it still spawn the interpreter: the
start-up itself (``python -m touchstream.cli``, the console script, which modules a command
imports: ``tests/unit/test_cli_lazy.py``, ``tests/unit/test_runtime_imports.py``) and
commands killed or signalled mid-run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# --- the zygote (runs as its own process) ----------------------------------------------

def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the command and exit with its status. Never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        for fd, path, flags in ((0, request["stdin"], os.O_RDONLY),
                                (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                                (2, request["stderr"], os.O_WRONLY | os.O_TRUNC)):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        # fresh text streams over the new descriptors (the zygote's had its protocol pipe
        # behind fd 0, possibly with input read ahead)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False,  # noqa: SIM115
                          errors="backslashreplace", buffering=1)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["touchstream", *request["args"]]
        from touchstream.cli import main

        try:
            code = main(request["args"])
        except SystemExit as exc:  # what the interpreter does with an uncaught SystemExit
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 — an uncaught error: a traceback and status 1
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _serve() -> None:
    """The zygote: import every CLI module, then fork a child per request line on stdin
    and answer its pid, then its exit status (``subprocess``'s convention: -N for signal
    N), each on a line of the protocol pipe."""
    from touchstream import cli

    for name in cli.MODULES:
        importlib.import_module(name)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 1)  # nothing the zygote prints can reach the protocol pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test worker stops it, not ^C
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _child(request)
        answers.write(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        answers.write(f"{os.waitstatus_to_exitcode(status)}\n".encode())


# --- the test side ---------------------------------------------------------------------

class _Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cli_fork"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self._answers = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def line(self, timeout: float | None) -> str | None:
        """The zygote's next answer line, or None if none came within ``timeout``. Read
        from the descriptor with a buffer of our own: a buffered reader could take both
        of a quick command's lines (pid, status) at once and leave ``select`` waiting
        for the second."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._answers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the CLI zygote died (exit {self.proc.wait()})")
            self._answers += chunk
        line, _, self._answers = self._answers.partition(b"\n")
        return line.decode()

    def fork(self, request: dict[str, Any]) -> int:
        """Start the command; its pid (its status is the next line: ``line``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        pid = int(self.line(60) or "0")
        if not pid:
            raise RuntimeError("the CLI zygote did not fork within 60 s")
        return pid

    def run(self, request: dict[str, Any], timeout: float) -> tuple[int, bool]:
        """(exit status, whether it was killed for taking longer than ``timeout``)."""
        pid = self.fork(request)
        status = self.line(timeout)
        if status is not None:
            return int(status), False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return int(self.line(60) or "-9"), True

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()


_zygote: _Zygote | None = None
_lock = threading.RLock()


def run_cli(args: list[str] | tuple[str, ...], env: dict[str, str], *,
            stdin: str | None = None, cwd: Path | str = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, "-m", "touchstream.cli", *args], env=env, cwd=cwd,
    input=stdin, capture_output=True, text=True, timeout=timeout)``, forked from the
    worker's zygote: the whole of ``env`` is the command's environment."""
    with _lock, tempfile.TemporaryDirectory(prefix="ts-cli-") as tmp:
        folder = Path(tmp)
        (folder / "in").write_text(stdin or "", encoding="utf-8")
        request = {"args": list(args), "env": dict(env), "cwd": str(cwd),
                   "stdin": str(folder / "in"), "stdout": str(folder / "out"),
                   "stderr": str(folder / "err")}
        for name in ("out", "err"):
            (folder / name).touch()
        code, killed = _ready().run(request, timeout)
        out = (folder / "out").read_text(encoding="utf-8", errors="replace")
        err = (folder / "err").read_text(encoding="utf-8", errors="replace")
    command = ["touchstream", *args]
    if killed:
        raise subprocess.TimeoutExpired(command, timeout, output=out, stderr=err)
    return subprocess.CompletedProcess(command, code, out, err)


class Started:
    """A command started with ``start_cli``: ``pid`` to signal it, ``poll`` and ``wait``
    as ``subprocess.Popen``'s (its output is not kept)."""

    def __init__(self, zygote: _Zygote, pid: int) -> None:
        self.pid = pid
        self._zygote = zygote
        self.returncode: int | None = None

    def poll(self) -> int | None:
        with _lock:
            if self.returncode is None:
                line = self._zygote.line(0)
                if line is not None:
                    self._ended(int(line))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with _lock:
            if self.returncode is None:
                line = self._zygote.line(timeout)
                if line is None:
                    raise subprocess.TimeoutExpired(["touchstream"], timeout or 0)
                self._ended(int(line))
        assert self.returncode is not None
        return self.returncode

    def _ended(self, code: int) -> None:
        global _running
        self.returncode = code
        if _running is self:
            _running = None


#: the command ``start_cli`` started, until it is seen to end (the zygote waits for it)
_running: Started | None = None


def _ready() -> _Zygote:
    """The worker's zygote, free for a command (called holding ``_lock``): a started
    command a test left running (a failed test) is killed first."""
    global _zygote
    if _running is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(_running.pid, signal.SIGKILL)
        assert _zygote is not None
        _running._ended(int(_zygote.line(60) or "-9"))
    if _zygote is None or not _zygote.alive():
        _zygote = _Zygote()
    return _zygote


def start_cli(args: list[str] | tuple[str, ...], env: dict[str, str], *,
              cwd: Path | str = ROOT) -> Started:
    """Start ``touchstream *args`` forked from the worker's zygote and return at once (its
    standard streams go to /dev/null), for a test that kills it mid-run."""
    global _running
    with _lock:
        zygote = _ready()
        request = {"args": list(args), "env": dict(env), "cwd": str(cwd),
                   "stdin": os.devnull, "stdout": os.devnull, "stderr": os.devnull}
        _running = Started(zygote, zygote.fork(request))
        return _running


def close() -> None:
    """Stop this worker's zygote and anything it started (the suite's end; a later
    ``run_cli`` starts another)."""
    global _zygote, _running
    with _lock:
        if _running is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(_running.pid, signal.SIGKILL)
            _running = None
        if _zygote is not None:
            _zygote.close()
            _zygote = None


if __name__ == "__main__":
    _serve()
