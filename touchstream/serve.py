"""Running the API: uvicorn on the configured stores, plus the services beside it.

Extension point: ``background_services(deps)`` returns the services
(objects with ``start()``/``stop()``) that run in the API process — the
projection runners hook in there. ``create_app`` starts them at lifespan
startup and stops them, in reverse order, at shutdown.

Graceful shutdown (SIGTERM or Ctrl-C; with ``--workers N`` the supervisor passes
SIGTERM on to each worker): uvicorn stops accepting connections and waits up to
``TOUCHSTREAM_SHUTDOWN_GRACE`` seconds for the requests in flight (a webhook waiting
on its group commit is one of them). Then the services stop, last started first:
the audit seal, the SMTP sender and the IMAP follower (each finishes the batch it is
on: they look at their stop flag between batches), the projection runner (between
two batches: its position is written with its rows), the read audit's group commit
(what is queued is written), and last the dependencies — the webhook group commit
first (what is queued is written), then the stores.

Logs go through ``touchstream.logs`` (``TOUCHSTREAM_LOG_FORMAT``); uvicorn's access
log is off (it would write raw paths and queries: the request log writes route
templates). With ``--workers N`` the metrics of all workers are summed at each scrape
(``touchstream.metrics``: multiprocess mode in a temporary folder).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

import uvicorn
from fastapi import FastAPI

from touchstream import logs
from touchstream.app import Service, create_app
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.http_limits import HeaderLimitedProtocol
from touchstream.metrics import MULTIPROC_ENV

log = logging.getLogger("touchstream.serve")
WORKER_HEALTHCHECK_S = 60


def background_services(deps: Dependencies, *, projections: bool = True) -> list[Service]:
    """Services run beside the API in each server process.

    With several workers (or hosts) each runs its share of the projections, one
    owner per read model by lease (``touchstream.fleet.projections``);
    ``--no-projections`` leaves them to separate ``touchstream projections run``
    workers.
    """
    from touchstream.audit_wiring import ReadAuditService, SealService
    from touchstream.console.follow import CallFollower
    from touchstream.email_wiring import email_services
    from touchstream.read_side import ProjectionService
    from touchstream.work_policies import work_services

    services: list[Service] = [ProjectionService(deps)] if projections else []
    # last, so it stops first: the shutdown seal is taken while everything else still runs
    return [ReadAuditService(), *services, CallFollower(deps), *email_services(deps),
            *work_services(deps), SealService(deps.settings)]


def build_app(deps: Dependencies, *, projections: bool = True) -> FastAPI:
    """The served app: command and read routes, the phone/fax/web/visit routes, plus the
    background services; ``deps`` is closed when the app shuts down."""
    from touchstream.asof_routes import as_of_routes
    from touchstream.audit_routes import access_log_routes
    from touchstream.channel_routes import channel_routers
    from touchstream.console import console_routes
    from touchstream.privacy_routes import privacy_routes
    from touchstream.read_side import read_routes
    from touchstream.replies_routes import replies_routes
    from touchstream.work_routes import work_routes

    return create_app(deps, routers=[read_routes, *channel_routers(deps.settings),
                                     access_log_routes, privacy_routes, as_of_routes,
                                     console_routes, work_routes, replies_routes],
                      services=[deps, *background_services(deps, projections=projections)])


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``--workers N``): settings from the environment."""
    projections = os.environ.get("TOUCHSTREAM_SERVE_PROJECTIONS", "y") != "n"
    deps = bootstrap()
    logs.configure(deps.settings.operations.log_format)
    return build_app(deps, projections=projections)


def warn_if_no_keys(deps: Dependencies) -> None:
    if not any(k.active for k in deps.keys.list_keys()):
        log.warning("no active API key: every request will get 401; create one with "
                    "'touchstream keys create --role admin'")


def run(deps: Dependencies, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
        *, projections: bool = True) -> None:
    """Serve until interrupted. uvicorn picks uvloop and httptools when installed."""
    logs.configure(deps.settings.operations.log_format)
    warn_if_no_keys(deps)
    os.environ["TOUCHSTREAM_SERVE_PROJECTIONS"] = "y" if projections else "n"
    common: dict[str, Any] = {"host": host, "port": port, "loop": "auto",
              "http": HeaderLimitedProtocol,
              "proxy_headers": False, "server_header": False,
              "log_config": logs.uvicorn_log_config(), "access_log": False,
              # open screen-pop streams (the console's SSE) never finish on their own
              "timeout_graceful_shutdown": deps.settings.operations.shutdown_grace}
    metrics_dir = None
    try:
        if workers > 1:
            deps.close()  # each worker bootstraps its own
            # before the workers start: prometheus-client picks its mode at import
            if not os.environ.get(MULTIPROC_ENV):  # an operator's own folder is kept
                metrics_dir = tempfile.mkdtemp(prefix="touchstream-metrics-")
                os.environ[MULTIPROC_ENV] = metrics_dir
            # uvicorn kills a worker that does not answer its ping in time; a worker
            # still importing on a loaded host (measured: >5 s, 8 jobs on 2 cores) is not hung
            uvicorn.run("touchstream.serve:app_from_env", factory=True, workers=workers,
                        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S, **common)
        else:
            uvicorn.run(build_app(deps, projections=projections), **common)
    finally:
        deps.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("stopped")
