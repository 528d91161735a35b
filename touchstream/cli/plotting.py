"""Charts for ``touchstream analytics … --plot out.png``: a time series and a heatmap.

matplotlib is imported only when a chart is drawn (the Agg backend, no display, no
global pyplot state: one ``Figure`` per chart), so the CLI starts without it. A path
that cannot be written is a ``CliError`` (exit 2), nothing half-written is left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from touchstream.cli.errors import CliError

MAX_TICKS = 24


def _figure(width: float, height: float) -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # an install without the dependency
        raise CliError("--plot needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _target(path: str) -> Path:
    """``path`` checked before anything is drawn (a PNG in an existing directory)."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise CliError(f"--plot writes PNG: give a path ending in .png, not {path!r}")
    if not target.parent.is_dir():
        raise CliError(f"--plot: no such directory: {target.parent}")
    return target


def _save(fig: Any, path: str) -> None:
    """Write the PNG beside ``path`` and move it into place (no partial file on failure)."""
    target = _target(path)
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix=".png", dir=folder)
    except OSError as exc:
        raise CliError(f"--plot: cannot write in {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            fig.savefig(out, format="png")
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CliError(f"--plot: cannot write {path}: {exc.strerror}") from exc


def _ticks(ax: Any, labels: Sequence[str]) -> None:
    step = max(1, -(-len(labels) // MAX_TICKS))
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], rotation=45, ha="right", fontsize=8)


def time_series(path: str, periods: Sequence[str],
                series: Mapping[str, Sequence[float | None]], *, title: str, ylabel: str,
                stacked: bool = False) -> None:
    """One line per series over ``periods`` (None: a gap), or stacked bars per period."""
    _target(path)
    fig = _figure(max(6.0, min(16.0, 0.35 * len(periods))), 4.5)
    ax = fig.add_subplot()
    xs = list(range(len(periods)))
    bottom = [0.0] * len(periods)
    for name, values in series.items():
        if stacked:
            heights = [v or 0.0 for v in values]
            ax.bar(xs, heights, bottom=bottom, label=name)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        else:
            ax.plot(xs, [float("nan") if v is None else v for v in values], marker="o",
                    markersize=3, label=name)
    _ticks(ax, periods)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def heatmap(path: str, rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float | None]], *, title: str, xlabel: str, ylabel: str,
            percent: bool = True) -> None:
    """A matrix (e.g. the cohort triangle: cohorts × periods since) with each cell's value
    written in it; None cells (not yet reached) stay blank."""
    _target(path)
    fig = _figure(max(6.0, min(16.0, 0.6 * len(columns) + 2)),
                  max(3.0, min(14.0, 0.4 * len(rows) + 1.5)))
    ax = fig.add_subplot()
    grid = [[float("nan") if v is None else v for v in row] for row in values]
    image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v is not None:
                light = float(image.norm(v)) > 0.6  # viridis is pale at the top
                ax.text(j, i, f"{v:.0%}" if percent else f"{v:g}", ha="center", va="center",
                        fontsize=7, color="black" if light else "white")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    _ticks(ax, columns)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _save(fig, path)
