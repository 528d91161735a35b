"""Recording call steps for the webhook adapters: errors translated to HTTP once, here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from channels.phone.directory import CallDirectory
from channels.phone.group_commit import CallNotKnownError, CallPlace, GroupCommit
from commands import messages as m
from commands.hub import ConcurrencyError, CustomerNotFoundError, Hub
from commands.ports import Recorded
from domain.errors import DomainError

HubProvider = Callable[[], Hub]
#: Told of each verified call step before it is recorded (the staff console's live
#: screen-pop): it must not block or raise.
StepObserver = Callable[[m.RecordCallStep], None]


def _located(cmd: m.Touchpoint, directory: CallDirectory, call_id: str) -> m.Touchpoint:
    """Every step of a call goes to the customer its first recorded step went to (so a
    later step needs no number, and a numbered one skips the number lookup)."""
    if cmd.customer_id is not None:
        return cmd
    known = directory.customer_of(call_id)
    if known is not None:
        return cmd.model_copy(update={"customer_id": known})
    if cmd.counterpart() is None:
        # The provider retries on 5xx: by then the call's first step may have come in.
        raise HTTPException(
            503, f"call {call_id} is not known yet and carries no number",
            headers={"Retry-After": "5"},
        )
    return cmd


def _execute(hub: Hub, cmd: m.Touchpoint, directory: CallDirectory, call_id: str) -> Recorded:
    cmd = _located(cmd, directory, call_id)
    try:
        result = hub.execute(cmd)
    except CustomerNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except ConcurrencyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from exc
    except DomainError as exc:
        raise HTTPException(422, str(exc)) from exc
    if result.customer_id and not result.held_for_triage:
        directory.remember(call_id, result.customer_id)
    return result


async def record(get_hub: HubProvider, cmd: m.Touchpoint, directory: CallDirectory, call_id: str,
                 committer: GroupCommit | None = None,
                 on_step: StepObserver | None = None) -> Recorded:
    """Record one step: through the group commit when given, else on a worker thread
    (the write model is synchronous). ``on_step`` hears of the step first: a ringing
    phone is news before its step is durable.

    Through the group commit the request hands its step over and waits, nothing else:
    the writer places it (the call directory, the number's claim) with the rest of its
    batch and notes the call in the directory before answering (``GroupCommit``)."""
    if on_step is not None and isinstance(cmd, m.RecordCallStep):
        on_step(cmd)
    if committer is None:
        return await run_in_threadpool(_execute, get_hub(), cmd, directory, call_id)
    try:
        outcome = await committer.wait_for(cmd, CallPlace(directory, call_id))
    except CallNotKnownError as exc:
        # The provider retries on 5xx: by then the call's first step may have come in.
        raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
    except ConcurrencyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from exc
    if outcome.recorded is None:
        raise HTTPException(422, outcome.error or "not recorded")
    return outcome.recorded


def describe(exc: ValidationError) -> str:
    """A validation error as one line per field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
    )


def accepted(result: Recorded) -> dict[str, Any]:
    status = "duplicate" if result.duplicate else "recorded"
    return {
        "status": "held-for-triage" if result.held_for_triage else status,
        "customer_id": result.customer_id,
        "event_ids": result.event_ids,
    }
