"""Running the API: uvicorn on the configured stores, plus the services beside it.

Extension point: ``background_services(settings)`` returns the services
(objects with ``start()``/``stop()``) that run in the API process — the
projection runners hook in there. ``create_app`` starts them at lifespan
startup and stops them, in reverse order, at shutdown.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from fastapi import FastAPI

from touchstream import settings as settings_mod
from touchstream.app import Service, create_app
from touchstream.keys import open_key_store
from touchstream.settings import Settings

log = logging.getLogger("touchstream.serve")


def background_services(settings: Settings) -> list[Service]:
    """Services run beside the API in each server process."""
    from touchstream.email_wiring import email_services

    return [*email_services(settings)]


def build_app(settings: Settings) -> FastAPI:
    """The served app: the API plus its background services."""
    return create_app(settings, services=background_services(settings))


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``--workers N``): settings from the environment."""
    return build_app(settings_mod.load())


def warn_if_no_keys(settings: Settings) -> None:
    keys = open_key_store(settings)
    try:
        if not any(k.active for k in keys.list_keys()):
            log.warning("no active API key: every request will get 401; create one with "
                        "'touchstream keys create --role admin'")
    finally:
        keys.close()


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until interrupted. uvicorn picks uvloop and httptools when installed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    warn_if_no_keys(settings)
    common: dict[str, Any] = {"host": host, "port": port, "loop": "auto", "http": "auto",
              "proxy_headers": False, "server_header": False}
    if workers > 1:
        uvicorn.run("touchstream.serve:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(build_app(settings), **common)
