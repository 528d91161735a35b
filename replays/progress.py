"""A progress line on stderr: done/total, percent, rate and ETA (redrawn at most 5×/s).

The one progress bar of the CLI (rebuilds, demo seeding, imports, backfill,
benchmark set-up). It draws only on a terminal: when stderr is a pipe or a
file (CI logs, ``2>log``) or the caller asked for machine output (``--json``)
it stays silent, so redirected output holds no carriage-return noise.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.2


class ProgressBar:
    """Call it with ``(done, total)``; ``total`` ``None`` shows a count and rate only."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 24,
                 unit: str = "ev", enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.unit = unit
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.started = time.monotonic()
        self._drawn = 0.0
        self._shown = False

    @classmethod
    def on_terminal(cls, label: str, *, unit: str = "ev", quiet: bool = False) -> ProgressBar:
        """A bar on stderr when it is a terminal and the caller is not ``quiet`` (``--json``)."""
        return cls(label, unit=unit, enabled=False if quiet else None)

    def __call__(self, position: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        finished = total is not None and position >= total
        if now - self._drawn < REDRAW_S and not finished:
            return
        self._drawn = now
        self._shown = True
        self.stream.write("\r" + self.line(position, total, now - self.started))
        self.stream.flush()

    def line(self, position: int, total: int | None, elapsed: float) -> str:
        rate = position / elapsed if elapsed > 0 else 0.0
        if total is None:
            return f"{self.label} {position:,} {rate:,.0f} {self.unit}/s"
        frac = min(1.0, position / total) if total else 1.0
        filled = int(frac * self.width)
        eta = max(0, total - position) / rate if rate > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{position:,}/{total:,} {frac * 100:5.1f}% {rate:,.0f} {self.unit}/s "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def done(self) -> None:
        """End the line (only if one was drawn)."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False
