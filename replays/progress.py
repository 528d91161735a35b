"""A progress line on stderr: done/total, percent, rate and ETA (redrawn at most 5×/s)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 24) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, position: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.2 and position < total:
            return
        self._drawn = now
        self.stream.write("\r" + self.line(position, total, now - self.started))
        self.stream.flush()

    def line(self, position: int, total: int, elapsed: float) -> str:
        frac = min(1.0, position / total) if total else 1.0
        filled = int(frac * self.width)
        rate = position / elapsed if elapsed > 0 else 0.0
        eta = (total - position) / rate if rate > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{position:,}/{total:,} {frac * 100:5.1f}% {rate:,.0f} ev/s "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def done(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
