"""The read models by name."""

from __future__ import annotations

from collections.abc import Sequence

from projections.directory.projection import DirectoryProjection
from projections.engine import Projection, UnknownProjectionError
from projections.outbox.projection import OutboxProjection
from projections.service.projection import ServiceProjection
from projections.summary.projection import SummaryProjection
from projections.timeline.projection import TimelineProjection

PROJECTIONS: dict[str, type[Projection]] = {
    "timeline": TimelineProjection,
    "directory": DirectoryProjection,
    "summary": SummaryProjection,
    "outbox": OutboxProjection,
    "service": ServiceProjection,
}


def get(name: str) -> Projection:
    try:
        return PROJECTIONS[name]()
    except KeyError as exc:
        raise UnknownProjectionError(
            f"unknown read model {name!r}; read models: {', '.join(PROJECTIONS)}"
        ) from exc


def select(names: Sequence[str] | None) -> list[Projection]:
    """The named projections (all when ``names`` is empty), each once, in a stable order."""
    wanted = list(dict.fromkeys(names or PROJECTIONS))
    return [get(n) for n in wanted]
