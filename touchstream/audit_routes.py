"""The read audit at the HTTP boundary: record a read (a dependency or a call) and the
``GET /customers/{customer_id}/access-log`` route.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at
runtime, including names local to the factories.
"""

import os
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from projections.store import ReadStore
from replays.audit import access as access_log
from touchstream import logs


class AccessRecordPublic(BaseModel):
    """One read of a customer's data, as the access log holds it."""

    seq: int = Field(description="Position in the access log (1, 2, …, no gaps).")
    at: str = Field(description="When the read was recorded (ISO 8601, UTC).")
    key_id: str
    role: str
    route: str = Field(description="Method and route, e.g. "
                                   "`GET /customers/{customer_id}/timeline`.")
    customer_id: str
    request_id: str = Field(description="The request's X-Request-ID, or one made up.")
    client: str = Field(description="The client's address as the server saw it.")
    previous: str = Field(description="The previous record's hash (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of `previous` and this record's canonical JSON.")


def _entry(request: Any, who: Any, customer_id: str) -> access_log.AccessEntry:
    # From the ASGI scope directly: building ``request.url`` (parsing the Host header)
    # and a UUID object cost more than the rest of the record (py-spy, bench timeline).
    scope = request.scope
    route = scope.get("route")
    client = scope.get("client")
    return access_log.AccessEntry(
        at=datetime.now(UTC).isoformat(), key_id=str(who.key_id), role=str(who.role),
        route=f"{scope['method']} {route.path if route is not None else scope['path']}",
        customer_id=str(customer_id),
        request_id=_request_id(request),
        client=client[0] if client else "")


def _request_id(request: Request) -> str:
    """The request log's id (``touchstream.observe``), so an access record and its log
    line meet; outside the middleware, the header or a new one."""
    ctx = logs.current()
    if ctx is not None:
        return ctx.request_id
    return request.headers.get("x-request-id") or os.urandom(16).hex()


def _refused(exc: access_log.AccessLogError) -> HTTPException:
    return HTTPException(503, detail="the read could not be recorded in the access log; "
                                     "nothing was shown", headers={"Retry-After": "1"})


def record_read(recorder: access_log.AccessRecorder, request: Any, who: Any,
                customer_id: str) -> None:
    """Record that ``who`` read ``customer_id``'s data through ``request`` (for a plain
    ``def`` route: it blocks its worker thread); 503 if it cannot be, or not within the
    recorder's timeout."""
    try:
        recorder.record(_entry(request, who, customer_id))
    except access_log.AccessLogError as exc:
        raise _refused(exc) from exc


async def arecord_read(recorder: access_log.AccessRecorder, request: Any, who: Any,
                       customer_id: str) -> None:
    """``record_read`` for an ``async def`` route: waits on the event loop until the
    record is durable (group-committed with concurrent reads)."""
    try:
        await recorder.arecord(_entry(request, who, customer_id))
    except access_log.AccessLogError as exc:
        raise _refused(exc) from exc


def access_recorded(recorder: access_log.AccessRecorder, principal: Any) -> Any:
    """A FastAPI dependency for routes with a ``customer_id`` path parameter: records the
    read before the handler runs. ``principal`` is the route's own ``authorize(...)``
    dependency (FastAPI runs it once per request when the route uses the same one).
    The id is taken as a UUID, so a malformed one records nothing (the route answers
    422) and any spelling of an id is recorded as the one the access log is asked by.
    It waits on the event loop (``arecord``), not in a worker thread: the thread hop
    cost more than the group-committed append (``touchstream bench timeline``)."""
    async def dependency(request: Request, who: Annotated[Any, Depends(principal)],
                         customer_id: UUID) -> None:
        try:
            await recorder.arecord(_entry(request, who, str(customer_id)))
        except access_log.AccessLogError as exc:
            raise _refused(exc) from exc

    return dependency


def access_log_routes(context: Any) -> Any:
    """A ``RouterFactory``: ``GET /customers/{customer_id}/access-log`` (auditor, privacy
    officer, admin)."""
    router = APIRouter(tags=["audit"])
    auditor = context.authorize("auditor", "privacy")
    store = ReadStore(context.settings.read_store,
                      timeout_s=context.settings.store_timeout_s)

    @router.get("/customers/{customer_id}/access-log",
                summary="Who read this customer's data, oldest first (a hash chain)",
                response_model=list[AccessRecordPublic])
    def access_log_of(customer_id: UUID, who: Annotated[Any, Depends(auditor)],
                      since: Annotated[datetime | None, Query(
                          description="only reads at or after this time (ISO 8601)")] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      ) -> list[dict[str, Any]]:
        db = store.connect()
        try:
            access_log.ensure_schema(db)
            found = access_log.records(db, customer_id=str(customer_id), limit=limit,
                                       since=since.astimezone(UTC).isoformat() if since else None)
        finally:
            db.close()
        return [r.to_json() for r in found]

    return router
