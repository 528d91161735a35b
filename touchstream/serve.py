"""Running the API: uvicorn on the configured stores, plus the services beside it.

Extension point: ``background_services(deps)`` returns the services
(objects with ``start()``/``stop()``) that run in the API process — the
projection runners hook in there. ``create_app`` starts them at lifespan
startup and stops them, in reverse order, at shutdown.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn
from fastapi import FastAPI

from touchstream.app import Service, create_app
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.http_limits import HeaderLimitedProtocol

log = logging.getLogger("touchstream.serve")


def background_services(deps: Dependencies, *, projections: bool = True) -> list[Service]:
    """Services run beside the API in each server process.

    With several workers only the first should run the projections (exactly
    once either way, but the work would be repeated); ``--no-projections``
    leaves them to a separate ``touchstream projections run`` worker.
    """
    from touchstream.audit_wiring import SealService
    from touchstream.email_wiring import email_services
    from touchstream.read_side import ProjectionService
    from touchstream.work_policies import work_services

    services: list[Service] = [ProjectionService(deps)] if projections else []
    # last, so it stops first: the shutdown seal is taken while everything else still runs
    return [*services, *email_services(deps), *work_services(deps), SealService(deps.settings)]


def build_app(deps: Dependencies, *, projections: bool = True) -> FastAPI:
    """The served app: command and read routes, the phone/fax/web/visit routes, plus the
    background services; ``deps`` is closed when the app shuts down."""
    from touchstream.asof_routes import as_of_routes
    from touchstream.audit_routes import access_log_routes
    from touchstream.channel_routes import channel_routers
    from touchstream.console import console_routes
    from touchstream.privacy_routes import privacy_routes
    from touchstream.read_side import read_routes
    from touchstream.work_routes import work_routes

    return create_app(deps, routers=[read_routes, *channel_routers(deps.settings),
                                     access_log_routes, privacy_routes, as_of_routes,
                                     console_routes, work_routes],
                      services=[deps, *background_services(deps, projections=projections)])


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``--workers N``): settings from the environment."""
    projections = os.environ.get("TOUCHSTREAM_SERVE_PROJECTIONS", "y") != "n"
    return build_app(bootstrap(), projections=projections)


def warn_if_no_keys(deps: Dependencies) -> None:
    if not any(k.active for k in deps.keys.list_keys()):
        log.warning("no active API key: every request will get 401; create one with "
                    "'touchstream keys create --role admin'")


def run(deps: Dependencies, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        *, projections: bool = True) -> None:
    """Serve until interrupted. uvicorn picks uvloop and httptools when installed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    warn_if_no_keys(deps)
    os.environ["TOUCHSTREAM_SERVE_PROJECTIONS"] = "y" if projections else "n"
    if workers > 1 and projections:
        log.warning("each of the %d workers runs the projections (still exactly once, but the "
                    "work is repeated): prefer --no-projections plus 'touchstream projections "
                    "run'", workers)
    common: dict[str, Any] = {"host": host, "port": port, "loop": "auto",
              "http": HeaderLimitedProtocol,
              "proxy_headers": False, "server_header": False,
              # open screen-pop streams (the console's SSE) never finish on their own
              "timeout_graceful_shutdown": 10}
    try:
        if workers > 1:
            deps.close()  # each worker bootstraps its own
            uvicorn.run("touchstream.serve:app_from_env", factory=True, workers=workers, **common)
        else:
            uvicorn.run(build_app(deps, projections=projections), **common)
    finally:
        deps.close()
