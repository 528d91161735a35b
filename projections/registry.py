"""The read models by name."""

from __future__ import annotations

from collections.abc import Sequence

from projections.callcentre.projection import CallCentreProjection
from projections.directory.projection import DirectoryProjection
from projections.dispatch.projection import DispatchProjection
from projections.engine import Projection, UnknownProjectionError
from projections.outbox.projection import OutboxProjection
from projections.summary.projection import SummaryProjection
from projections.timeline.projection import TimelineProjection

PROJECTIONS: dict[str, type[Projection]] = {
    "timeline": TimelineProjection,
    "directory": DirectoryProjection,
    "summary": SummaryProjection,
    "outbox": OutboxProjection,
    "dispatch": DispatchProjection,
    "callcentre": CallCentreProjection,
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
