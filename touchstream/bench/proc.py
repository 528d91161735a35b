"""CPU of the bench's server processes, read from ``/proc`` (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def tree_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process and its descendants have used so far: each
    live one's own and that of the children it has reaped. A server's per-connection
    processes that came and went since are in their parent's reaped share, so the
    difference of two readings is what the whole server cost in between. None where
    there is no ``/proc`` or no such process."""
    if pid is None or not Path(f"/proc/{pid}").exists():
        return None
    total, stack = 0, [pid]
    while stack:
        member = stack.pop()
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile: its parent has (or will have) reaped it
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        for task in Path(f"/proc/{member}/task").glob("*"):
            try:
                stack += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return total / os.sysconf("SC_CLK_TCK")
