"""``GET /ready``: can this process serve? Both stores answer, no read model is stopped
and none is more than ``TOUCHSTREAM_READY_MAX_LAG`` events behind the log (0: no bound).

Public like ``/health`` (load balancers call it without a key), so it names what
is wrong without any detail an outsider could use: the store that does not
answer, the read models stopped at a damaged event (``projections status`` has
the position, event and reason).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from projections.engine import live_generation
from projections.faults import faults
from projections.status import status
from touchstream.bootstrap import Dependencies
from touchstream.http_errors import error_response


def readiness_problems(deps: Dependencies) -> list[str]:
    """What keeps this process from serving; empty when it can."""
    problems: list[str] = []
    head: int | None = None
    try:
        head = deps.hub.recorder.max_notification_id() or 0
    except Exception:  # noqa: BLE001 - any failure means "not ready", said without detail
        problems.append("event store unavailable")
    try:
        db = deps.read_store.connect()
    except Exception:  # noqa: BLE001
        problems.append("read store unavailable")
        return problems
    try:
        for (name, generation) in sorted(faults(db)):
            live = live_generation(db, name)
            if live is not None and live.generation == generation:
                problems.append(f"read model {name} stopped at a damaged event")
        bound = deps.settings.operations.ready_max_lag
        if bound and head is not None:
            problems.extend(f"read model {row.name} is {row.lag_events} events behind "
                            f"(bound {bound})"
                            for row in status(db, head) if row.live and row.lag_events > bound)
    except Exception:  # noqa: BLE001
        problems.append("read store unavailable")
    finally:
        db.close()
    return problems


def readiness_router(deps: Dependencies) -> APIRouter:
    router = APIRouter(tags=["meta"])

    @router.get(
        "/ready", summary="Readiness: both stores answer, no read model stopped or too far behind",
        responses={503: {"description": "Not ready: what is wrong, with Retry-After."}},
    )
    def ready() -> Any:
        problems = readiness_problems(deps)
        if problems:
            return error_response(503, "; ".join(problems), headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready"})

    return router
