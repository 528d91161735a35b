"""The request middleware: a request id, one log line and the metrics of every request.

* **Request id**: an incoming ``X-Request-ID`` (1–128 visible ASCII characters: no
  space, no control character) is kept, anything else is replaced by a new one (32 hex
  digits); the answer carries it
  back in ``X-Request-ID`` and every log line of the request carries it (``touchstream.logs``).
* **Log**: one ``request`` line per request at INFO — method, route template, status,
  duration, request, key and customer ids. Never the raw path or query.
* **Metrics**: ``touchstream.metrics`` counts it under its route template (``unmatched``
  for a path no route knows, so a scanner cannot blow up the label set).

Pure ASGI (no ``BaseHTTPMiddleware``): the route runs in the same task, so the context
the authorizer fills in is the one read back here. Outermost, so the 413/414 answers of
``RequestLimits`` are counted and logged too.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchstream import logs
from touchstream.metrics import Metrics, timer

log = logging.getLogger("touchstream.request")
_ID = re.compile(r"[\x21-\x7e]{1,128}")
#: Path parameters that name a customer (the log's ``customer_id``).
_CUSTOMER_PARAMS = ("customer_id",)


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class ObserveRequests:
    """Request id, request log line and request metrics (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx, token = logs.begin(request_id_of(scope))
        header = (b"x-request-id", ctx.request_id.encode())
        status = 500
        elapsed = timer()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = elapsed()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            params = scope.get("path_params") or {}
            for name in _CUSTOMER_PARAMS:
                if params.get(name):
                    logs.note_customer(str(params[name]))
            method = scope.get("method", "")
            self.metrics.observe_request(route, method, status, seconds, scope.get("path", ""))
            log.info("request", extra={"method": method, "route": route, "status": status,
                                       "duration_ms": round(seconds * 1000, 2)})
            logs.end(token)
