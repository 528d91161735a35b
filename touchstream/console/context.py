"""What the console's routers are built from (one ``Console`` per app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from channels.blobs import BlobStore
from commands.hub import Hub
from domain.sla import DEFAULT_CONFIG, SlaConfig, config_from_mapping
from read_api.business import BusinessViews
from read_api.dependencies import ReadDeps
from touchstream.console.feed import CallFeed
from touchstream.console.sessions import SessionStore
from touchstream.console.web import PREFIX, ConsoleAuth, Pages, console_route, csrf_checker


@dataclass
class Console:
    """The console's shared pieces: pages, sessions, the caller, the read API's
    dependencies (views, partner scope, read audit) and the write model."""

    pages: Pages
    sessions: SessionStore
    auth: ConsoleAuth
    reads: ReadDeps
    hub: Callable[[], Hub]
    blobs: BlobStore | None
    feed: CallFeed
    normalise_phone: Callable[[str], str]
    secure_cookie: bool | None = None  # None: Secure exactly when the request is https
    sla: SlaConfig | None = None  # the cases panel's SLA states (None: the built-in policy)

    def __post_init__(self) -> None:
        self.csrf = csrf_checker(self.auth)
        self.business = BusinessViews(self.reads.views,
                                      self.sla or config_from_mapping(DEFAULT_CONFIG))

    def router(self, **kwargs: Any) -> APIRouter:
        """A router whose routes answer HTML with the console's headers and error pages."""
        return APIRouter(prefix=PREFIX, route_class=console_route(self.pages),
                         include_in_schema=False, **kwargs)
