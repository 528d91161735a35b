"""Composition of the read side: read store, event source, projection runner, read API.

How the API process runs the projections (``touchstream serve``)::

    from touchstream.read_side import ProjectionService, read_routes
    create_app(settings, routers=[read_routes], services=[ProjectionService(settings)])

``touchstream projections run`` runs the same runner as a separate process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from commands.hub import Hub
from commands.identity import normalise_email, normalise_number
from projections import registry
from projections.engine import EventSource
from projections.runner import ProjectionRunner
from projections.store import ReadStore
from touchstream.settings import Settings, store_kind
from touchstream.wiring import build_hub


def read_store(settings: Settings) -> ReadStore:
    return ReadStore(settings.read_store, timeout_s=settings.store_timeout_s)


def event_source(settings: Settings, hub: Hub) -> EventSource:
    """The log reader; LISTEN/NOTIFY wakes it on PostgreSQL, a 2 ms poll on SQLite."""
    kind = store_kind(settings.event_store)
    listen = settings.event_store if kind == "postgres" else None
    poll = 0.002 if kind == "sqlite" else 0.05
    return EventSource(hub.recorder, hub.mapper, listen_uri=listen, poll_interval=poll)


class ProjectionService:
    """Runs the projections in this process (``start``/``stop``, for the API's lifespan)."""

    def __init__(self, settings: Settings, names: Sequence[str] | None = None,
                 hub: Hub | None = None) -> None:
        self.settings = settings
        self.names = names
        self._hub = hub
        self._owns_hub = hub is None
        self.runner: ProjectionRunner | None = None

    def _source(self) -> EventSource:
        if self._hub is None:
            self._hub = build_hub(self.settings)
        return event_source(self.settings, self._hub)

    def start(self) -> None:
        self.runner = ProjectionRunner(read_store(self.settings), self._source,
                                       registry.select(self.names))
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if self._owns_hub and self._hub is not None:
            self._hub.close()
            self._hub = None


def start_projections(settings: Settings, names: Sequence[str] | None = None) -> ProjectionService:
    """Start the projections in background threads; call ``.stop()`` to end them."""
    service = ProjectionService(settings, names)
    service.start()
    return service


def read_views(settings: Settings) -> Any:
    """The views the read API serves from (``read_api.routes.ReadViews``)."""
    from read_api.routes import ReadViews  # FastAPI is not needed by the CLI's workers

    return ReadViews.on(read_store(settings))


def read_routes(context: Any) -> Any:
    """A ``RouterFactory`` for ``create_app``: the read API over this settings' read store.

    ``context`` needs ``settings``, ``authorize`` (the ``authorize(*roles)`` factory)
    and ``hub`` (a callable returning the write model, used for the log head).
    """
    from read_api.routes import read_router

    settings: Settings = context.settings
    hub: Callable[[], Hub] = context.hub
    region = settings.default_region
    return read_router(
        read_views(settings),
        context.authorize,
        normalise_phone=lambda raw: normalise_number(raw, region),
        normalise_email=normalise_email,
        log_head=lambda: int(hub().recorder.max_notification_id() or 0),
    )
