"""Helpers for the phone/fax/web adapter tests: a hub on SQLite and a FastAPI app around it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI

from channels.blobs import BlobStore
from commands.hub import Hub
from tests.conftest import store_env
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.http_errors import install_error_handlers


def sqlite_hub(tmp_path: Path) -> Hub:
    return make_hub(store_env("sqlite", tmp_path / "data"))


def app_blobs(hub: Hub, tmp_path: Path) -> BlobStore:
    """The app's blob store (keyed addresses, sealed) beside ``sqlite_hub(tmp_path)``."""
    return Dependencies(settings_mod.load(store_env("sqlite", tmp_path / "data")), hub=hub).blobs


def app_with(*routers: APIRouter) -> FastAPI:
    """A bare app with ``routers`` and the served app's error handlers."""
    app = FastAPI()
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def provider(hub: Hub) -> Callable[[], Hub]:
    return lambda: hub
