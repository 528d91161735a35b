"""What every read router shares: the views, the caller, partner scope, read-your-writes,
the read audit, orjson answers and the documented error statuses.

A resource router is ``def router(deps: ReadDeps) -> APIRouter``; its routes take
``who: Annotated[Principal, Depends(deps.reader(*ROLES))]`` and answer
``OrjsonResponse`` (declared with ``response_model=`` for the OpenAPI document:
returning a response directly skips FastAPI's own encoding, which cost ≈2 ms per
50-item page against ≈0.35 ms with orjson). A hot route may be built by
``APIRouter(route_class=FastReadRoute)`` (``read_api.fast_route``: its ordinary requests
skip FastAPI's per-request dependency solving; the timeline route is).

The read audit (``ReadAudit``, given by the composition root) records who read
whose data, durably, before it is shown: a route calls ``await deps.record(request,
who, customer_ids)`` once it has found the customer(s) and before answering (the
timeline, the summary, an event, a lookup or screen-pop hit). ``deps.audited(reader)``
does the same as a route dependency for a path's ``customer_id``, recording before
the handler runs; it costs a FastAPI dependency per request, which the timeline
benchmark could measure.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from projections.accounts.view import AccountsView
from projections.directory.view import DirectoryView
from projections.quality.view import QualityView
from projections.store import ReadStore
from projections.summary.view import SummaryView
from projections.timeline.view import InvalidQueryError, TimelineView
from projections.views import LiveView, ProjectionNotReadyError

TIMELINE_ROLES = ("agent", "sales", "service", "dispatcher", "auditor", "partner")
DIRECTORY_ROLES = ("agent", "sales", "marketing", "service", "dispatcher", "auditor", "partner")
SUMMARY_ROLES = DIRECTORY_ROLES
STATUS_ROLES = ("analyst", "auditor")
ACCOUNT_ROLES = ("agent", "sales", "marketing", "service", "dispatcher", "auditor", "partner")
QUALITY_ROLES = ("analyst",)  # and admin, admitted everywhere
POLL_S = 0.002
#: threads (so at most this many read-store connections: one per thread) that run the
#: read routes' queries on PostgreSQL, per process. The shared thread pool (40 threads)
#: opened one connection per thread it ever used: two uvicorn workers of two servers
#: passed PostgreSQL's default max_connections of 100 ("too many clients", a 503 in
#: ``bench timeline --workers 2 --store postgres``).
READ_THREADS = 8
MAX_POSITION = 2**62


class Principal(Protocol):
    """The caller, as ``authorize`` identifies it."""

    @property
    def role(self) -> str: ...

    @property
    def partner_id(self) -> str | None: ...


class OrjsonResponse(JSONResponse):
    """JSON rendered by orjson (a ``JSONResponse``, so OpenAPI shows the response model)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class ReadViews:
    """The views the read API serves from."""

    timeline: TimelineView
    directory: DirectoryView
    summary: SummaryView
    accounts: AccountsView
    quality: QualityView

    @classmethod
    def on(cls, store: ReadStore) -> "ReadViews":
        return cls(TimelineView(store), DirectoryView(store), SummaryView(store),
                   AccountsView(store), QualityView(store))

    @property
    def store(self) -> ReadStore:
        return self.timeline.store


@dataclass(frozen=True)
class ReadAudit:
    """The read audit, as the composition root wires it (``touchstream.audit_routes`` over
    the process's access recorder). Both record before anything is shown, return once the
    record is durable, and raise a 503 ``HTTPException`` when it cannot be made."""

    #: the route's own ``authorize(...)`` dependency → a route dependency that records a
    #: read of the path's ``customer_id`` by that caller
    recorded: Callable[[Any], Any]
    #: ``(request, who, customer_id)``: record a read found inside a handler (awaitable;
    #: it waits on the event loop, the writer group-commits concurrent reads)
    record: Callable[[Request, Any, str], Awaitable[None]]


def is_partner(who: Principal) -> bool:
    return who.role == "partner"


def not_found(customer_id: Any) -> HTTPException:
    return HTTPException(404, detail=f"no customer {customer_id}")


def scoped(found: Any, who: Principal, asked: Any) -> Any:
    """404 for an unknown customer and, identically, for one outside a partner's scope."""
    if found is None or (is_partner(who) and found.partner_id != who.partner_id):
        raise not_found(asked)
    return found


def unavailable(reason: str) -> HTTPException:
    return HTTPException(503, detail=reason, headers={"Retry-After": "1"})


MinPosition = Query(ge=0, le=MAX_POSITION, description=(
    "Wait (≤ 2 s) until the read model has applied this log position (a command "
    "response's `position`): read-your-writes."))


def responses(*statuses: int, **examples: Any) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route answers beyond the common ones (see touchstream.http_errors);
    ``examples`` map ``"s404"`` to a reason text shown as the example."""
    described = {
        400: "Malformed query (the reason says which parameter)",
        404: "No such customer or event (or outside a partner key's scope)",
        409: "`min_position` beyond the end of the event log",
        503: "The read model is behind `min_position` (or not built yet; see Retry-After), "
             "or the read could not be recorded in the access log",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"description": described[status]}
        if status == 503:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                "description": "Seconds to wait"}}
        reason = examples.get(f"s{status}")
        if reason:
            entry["content"] = {"application/json": {"example": {
                "error": _CODES[status], "reason": reason, "detail": reason}}}
        out[status] = entry
    return out


_CODES = {400: "bad_request", 404: "not_found", 409: "conflict", 503: "unavailable"}


@dataclass(frozen=True)
class ReadDeps:
    """The shared dependencies of the read routers."""

    views: ReadViews
    authorize: Callable[..., Any]
    log_head: Callable[[], int] | None = None
    wait_s: float = 2.0
    audit: ReadAudit | None = None
    #: made lazily by the executor (no thread before the first PostgreSQL query)
    queries: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        READ_THREADS, thread_name_prefix="read-query"))

    @property
    def threaded(self) -> bool:
        # SQLite answers in microseconds: a thread hop would cost more than the query.
        return self.views.store.dialect != "sqlite"

    def reader(self, *roles: str) -> Any:
        """The dependency giving the caller, admitting ``roles`` (and admin)."""
        return self.authorize(*roles)

    def audited(self, reader: Any) -> list[Any]:
        """A route's ``dependencies``: record the read of its path's ``customer_id`` by the
        caller. ``reader`` must be the very dependency its ``who`` uses (one key check)."""
        return [] if self.audit is None else [Depends(self.audit.recorded(reader))]

    async def record(self, request: Request, who: Any, customer_ids: Iterable[str]) -> None:
        """Record a read of each customer (once each) found inside a handler, before
        answering: all in one commit, shared with concurrent reads (503 if it fails)."""
        if self.audit is None:
            return
        wanted = list(dict.fromkeys(customer_ids))
        if len(wanted) == 1:  # the common case, without a task per record
            await self.audit.record(request, who, wanted[0])
        elif wanted:
            await asyncio.gather(*(self.audit.record(request, who, c) for c in wanted))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a read-model query (on one of ``READ_THREADS`` threads unless on SQLite); its
        errors as HTTP."""
        try:
            if self.threaded:
                context = contextvars.copy_context()  # as run_in_threadpool: logs, request id
                return await asyncio.get_running_loop().run_in_executor(
                    self.queries, context.run, fn, *args)
            return fn(*args)
        except ProjectionNotReadyError as exc:
            raise unavailable(str(exc)) from exc
        except InvalidQueryError as exc:
            raise HTTPException(400, detail=str(exc)) from exc

    async def reached(self, views: Sequence[LiveView], wanted: int | None) -> None:
        """Read-your-writes: wait until every view has applied ``wanted`` (409 if it was never
        recorded, 503 if still behind after ``wait_s``)."""
        if wanted is None:
            return
        deadline = time.monotonic() + self.wait_s
        checked_head = False
        while True:
            positions = [await self.call(v.position) for v in views]
            at = min(positions)
            if at >= wanted:
                return
            if not checked_head and self.log_head is not None:
                checked_head = True
                head = await self.call(self.log_head)
                if wanted > head:
                    raise HTTPException(409, detail=f"position {wanted} was never recorded "
                                                    f"(the event log ends at {head})")
            if time.monotonic() >= deadline:
                names = ", ".join(v.name for v, p in zip(views, positions, strict=True)
                                  if p < wanted)
                raise unavailable(f"read model {names} is at position {at}, behind the "
                                  f"requested {wanted} after waiting {self.wait_s:g} s; "
                                  "retry shortly")
            await asyncio.sleep(POLL_S)
