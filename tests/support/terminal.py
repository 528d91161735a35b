"""Run the CLI with its stderr on a real pseudo-terminal (what a person at a shell sees)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_with_terminal_stderr(env: dict[str, str], *args: str, stdin: str | None = None,
                             timeout: float = 300) -> tuple[int, str, str]:
    """(exit code, stdout, what the terminal showed on stderr)."""
    master, slave = pty.openpty()
    shown = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run([sys.executable, "-m", "touchstream.cli", *args], cwd=ROOT,
                              env={**os.environ, **env}, input=stdin, stdout=subprocess.PIPE,
                              stderr=slave, text=True, timeout=timeout, check=False)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return done.returncode, done.stdout, shown.decode(errors="replace")
