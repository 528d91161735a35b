"""One error shape for every HTTP route, translated in one place at the boundary.

Every error answer (4xx and 5xx, from any router, the request-limit middleware
or the server's header limit) is a JSON object::

    {"error": "not_found", "reason": "no customer 0b7c…", "detail": "no customer 0b7c…",
     "errors": {"query.limit": "Input should be less than or equal to 200"}}

* ``error``: a stable machine code per status (``ERROR_CODES``);
* ``reason``: one readable line saying what was wrong;
* ``detail``: the same text as ``reason``, kept for clients written against earlier
  versions (whose error bodies had only ``detail``);
* ``errors`` (only when input fields are at fault): field location → message.

Routes raise ``HTTPException(status, detail=text)`` (or ``detail={"reason": text,
"errors": {...}}``); ``install_error_handlers(app)`` registers the handlers that
render them, FastAPI's request validation errors (422) and unexpected exceptions
(500, with nothing internal in the body), and makes the OpenAPI document say so:
every documented 4xx/5xx response of every operation gets the ``ErrorPublic``
schema, and the statuses every route can answer (401/403 on routes with a key,
400/413/414 from the request limits, 431 from the server's head limits, 422 on
routes with input) are documented.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

log = logging.getLogger("touchstream.http")

#: status → the ``error`` code of its answers.
ERROR_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    414: "query_too_long",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}

#: what each status means, for the OpenAPI document.
DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed request (the reason says what)",
    401: "Missing, unknown or revoked API key",
    403: "The key's role may not call this route",
    404: "Not found (or outside a partner key's scope)",
    409: "Conflicts with what was recorded",
    413: "Request body too large",
    414: "Query string too long",
    415: "Unsupported Content-Type",
    422: "Invalid input; `errors` names the fields",
    429: "Too many requests; see Retry-After",
    431: "Request line and headers too large, or too many headers (refused by the server)",
    503: "Not available right now; retry after Retry-After seconds",
}


class ErrorPublic(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": "not_found", "reason": "no customer 0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11",
         "detail": "no customer 0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"},
        {"error": "invalid_input", "reason": "query.limit: Input should be less than or equal "
         "to 200", "detail": "query.limit: Input should be less than or equal to 200",
         "errors": {"query.limit": "Input should be less than or equal to 200"}}]})

    error: str = Field(description="Machine-readable code: " + ", ".join(
        f"{code} ({status})" for status, code in ERROR_CODES.items()) + ".")
    reason: str = Field(description="What was wrong, in one line.")
    detail: str = Field(description="The same text as `reason` (for earlier clients).")
    errors: dict[str, str] | None = Field(
        None, description="Only when input fields are at fault: location → message.")


def error_code(status: int) -> str:
    return ERROR_CODES.get(status, "client_error" if status < 500 else "server_error")


def error_body(status: int, reason: str, errors: Mapping[str, str] | None = None
               ) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error_code(status), "reason": reason, "detail": reason}
    if errors:
        body["errors"] = dict(errors)
    return body


def error_bytes(status: int, reason: str) -> bytes:
    """The body as bytes, for answers written below the ASGI app (the server's limits)."""
    return json.dumps(error_body(status, reason), separators=(",", ":")).encode()


def error_response(status: int, reason: str, errors: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(error_body(status, reason, errors), status_code=status,
                        headers=dict(headers) if headers else None)


def _field_errors(errors: Sequence[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ())) or "request"
        msg = str(e.get("msg", "invalid"))
        out[where] = f"{out[where]}; {msg}" if where in out else msg
    return out


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail: Any = exc.detail
    errors = None
    if isinstance(detail, Mapping):
        errors = {str(k): str(v) for k, v in (detail.get("errors") or {}).items()}
        detail = detail.get("reason", "")
    reason = str(detail) if detail else error_code(exc.status_code).replace("_", " ")
    if exc.status_code in (204, 304) or exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, reason, errors, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    reason = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "invalid input"
    return error_response(422, reason, errors)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as ``ErrorPublic`` and document it in its OpenAPI."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = _documented(app, app.openapi)  # type: ignore[method-assign]


_REF = "#/components/schemas/ErrorPublic"
_AUTH_SCHEMES = ("HTTPBearer", "APIKeyHeader")


def _documented(app: FastAPI, build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorPublic"] = ErrorPublic.model_json_schema(
            ref_template="#/components/schemas/{model}")
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for item in spec.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _document_operation(operation)
        app.openapi_schema = spec
        return spec

    return openapi


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    statuses = {400, 413, 414, 431}
    if any(s in _AUTH_SCHEMES for req in operation.get("security", []) for s in req):
        statuses |= {401, 403}
    if operation.get("parameters") or operation.get("requestBody") or "422" in responses:
        statuses.add(422)
    for status in statuses:
        responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
    for key, response in responses.items():
        if not key.isdigit() or int(key) < 400:
            continue
        status = int(key)
        content = response.setdefault("content", {}).setdefault("application/json", {})
        content["schema"] = {"$ref": _REF}
        if "example" not in content and "examples" not in content:
            reason = response.get("description") or error_code(status)
            content["example"] = error_body(status, reason)
        if response.get("description") in (None, "", "Validation Error"):
            response["description"] = DESCRIPTIONS.get(status, error_code(status))
