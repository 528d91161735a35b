"""The HTTP application, assembled from the routers other modules provide.

``create_app(deps, routers=(), services=())`` builds a FastAPI app from the
dependencies ``touchstream.bootstrap`` built; nothing is built at import time.
It mounts the command routes and every ``RouterFactory`` given, each called
with an ``AppContext`` (the settings, a hub provider, the ``authorize``
dependency factory, the key store and the dependencies themselves).
``services`` are started at lifespan startup and stopped at shutdown
(projection runners hook in there, see ``touchstream.serve``). Every error
answers the one shape of ``touchstream.http_errors``.

Limits (OWASP "unrestricted resource consumption"): request bodies above
``settings.max_body_bytes`` (``TOUCHSTREAM_MAX_BODY_BYTES``, default 1 MiB)
answer 413, whether announced by Content-Length or streamed chunked; query
strings above ``settings.max_query_bytes`` (``TOUCHSTREAM_MAX_QUERY_BYTES``,
default 8 KiB) answer 414, and more than ``MAX_QUERY_PARAMS`` parameters 400.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.web.command_routes import command_router
from commands.hub import Hub
from touchstream.adapters.keys import KeyStore
from touchstream.auth import Authorizer
from touchstream.bootstrap import Dependencies
from touchstream.console.docs import install_offline_docs
from touchstream.http_errors import error_response, install_error_handlers
from touchstream.metrics_route import metrics_router
from touchstream.observe import ObserveRequests
from touchstream.readiness import readiness_router
from touchstream.route_index import RouteIndex
from touchstream.settings import Settings
from touchstream.unavailable import STORE_ERRORS, store_unavailable_handler

MAX_QUERY_PARAMS = 100
#: the young generation's collection threshold while the app serves (see the lifespan)
YOUNG_GC_THRESHOLD = 10_000


class Service(Protocol):
    """Something that runs beside the API (a projection runner): started and stopped once."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class AppContext:
    """What a router factory may use."""

    settings: Settings
    hub: Callable[[], Hub]
    authorize: Authorizer
    keys: KeyStore
    deps: Dependencies


RouterFactory = Callable[[AppContext], Any]  # returns a fastapi.APIRouter, or a list of them


def create_app(
    deps: Dependencies,
    *,
    routers: Sequence[RouterFactory] = (),
    services: Sequence[Service] = (),
) -> FastAPI:
    """The Touchstream API over built dependencies (``touchstream.bootstrap``).

    The caller owns ``deps``; pass it among ``services`` (first) to have the app
    close it at shutdown, as ``touchstream serve`` does.
    """
    settings = deps.settings

    def hub() -> Hub:
        return deps.hub

    authorize = Authorizer(deps.keys)
    context = AppContext(settings=settings, hub=hub, authorize=authorize, keys=deps.keys,
                         deps=deps)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Service] = []
        threshold = gc.get_threshold()
        try:
            for service in services:
                service.start()
                started.append(service)
            # What start-up built (modules, routes, schemas: ~200,000 objects) lives as
            # long as the app: out of the collector's reach, a full collection walks only
            # what requests left behind (it walked all of it, ~0.1 s a time, as often as
            # requests held objects across an await: the audited timeline, py-spy).
            gc.freeze()
            # Young collections every YOUNG_GC_THRESHOLD allocations, not CPython's 700:
            # a request that waits (the read audit's record, a query on a thread) keeps
            # its request and framework objects alive across the wait, and with dozens
            # in flight nearly every young collection found them, walked them and
            # promoted them (137 young collections per 1,000 audited timeline pages
            # against 16 unaudited: 36 µs of collector CPU a page against 4). The same
            # for every route, and for both servers of the timeline benchmark.
            gc.set_threshold(YOUNG_GC_THRESHOLD, *threshold[1:])
            yield
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
            for service in reversed(started):
                service.stop()

    app = FastAPI(
        title="Touchstream",
        summary="Every customer touchpoint as an immutable event.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served from local assets instead of a CDN
    )
    app.state.context = context
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes,
                       max_query_bytes=settings.max_query_bytes)
    # outermost (added last): request id, log line and metrics for every answer
    app.add_middleware(ObserveRequests, metrics=deps.metrics)
    install_error_handlers(app)
    for error in STORE_ERRORS:  # 503 + Retry-After (touchstream.unavailable)
        app.add_exception_handler(error, store_unavailable_handler(settings.store_timeout_s))
    # A factory may answer several routers: each is then a top-level route of its own,
    # which the route index (below) skips unless it holds the request's first segment.
    # Among those it does try, the order is this one; no two routes share a path and
    # method, so the order changes only how soon a route is found.
    for factory in routers:
        made = factory(context)
        for router in made if isinstance(made, (list, tuple)) else [made]:
            app.include_router(router)
    app.include_router(command_router(hub, authorize, ledger=context.keys))

    @app.get("/health", tags=["meta"], summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(readiness_router(deps))
    app.include_router(metrics_router(deps, authorize))
    install_offline_docs(app)
    RouteIndex.install(app.router)  # last: it indexes the routes above

    return app


class BodyTooLargeError(HTTPException):
    """Raised while reading a request body that exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body exceeds {limit} bytes "
                                     "(TOUCHSTREAM_MAX_BODY_BYTES)")


class RequestLimits:
    """Pure ASGI middleware: total body size and query-string bounds."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_query_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_query = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if len(query) > self.max_query:
            await _reply(scope, send, 414, f"query string exceeds {self.max_query} bytes "
                                    "(TOUCHSTREAM_MAX_QUERY_BYTES)")
            return
        if query and query.count(b"&") + 1 > MAX_QUERY_PARAMS:
            await _reply(scope, send, 400, f"more than {MAX_QUERY_PARAMS} query parameters")
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await _reply(scope, send, 413, BodyTooLargeError(self.max_body).detail)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLargeError(self.max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError as exc:
            # Raised outside FastAPI's own handling (a streamed body read by a
            # non-FastAPI route): answer here if nothing was sent yet.
            if started:
                raise
            await _reply(scope, send, 413, exc.detail)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reply(scope: Scope, send: Send, status: int, reason: str) -> None:
    response = error_response(status, reason)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
