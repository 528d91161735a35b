"""``tree_cpu_s``: a server's CPU over a window includes the processes it reaped meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from touchstream.bench.proc import tree_cpu_s


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_cpu_of_a_child_that_came_and_went_is_counted() -> None:
    before = tree_cpu_s(os.getpid())
    assert before is not None
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True, timeout=60)  # reaped here
    after = tree_cpu_s(os.getpid())
    assert after is not None and after - before >= 0.25


def test_no_process_reads_none() -> None:
    assert tree_cpu_s(None) is None
    assert tree_cpu_s(2**22 + 12345) is None  # above any pid_max
