"""Recording call steps for the webhook adapters: errors translated to HTTP once, here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from channels.phone.directory import CallDirectory
from channels.phone.group_commit import GroupCommit
from commands import messages as m
from commands.hub import CommandError, ConcurrencyError, CustomerNotFoundError, Hub
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


def _resolved(hub: Hub, cmd: m.Touchpoint, directory: CallDirectory, call_id: str
              ) -> m.Touchpoint:
    """``_located``, and the customer found (or a first caller's prospect registered) here,
    on the request's own thread: the group commit's single writer then only records
    touchpoints, and a new number's registration (its data key and its claim, each
    durable) no longer holds up every callback queued behind it. Whatever cannot be
    resolved here (held for triage, unknown customer) is left to the writer, which
    decides it exactly as before."""
    cmd = _located(cmd, directory, call_id)
    if cmd.customer_id is not None:
        return cmd
    try:
        customer_id = hub.customer_for(cmd, hub.source_key_of(cmd))
    except (CommandError, DomainError):
        return cmd
    return cmd.model_copy(update={"customer_id": customer_id})


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


async def record(hub: Hub, cmd: m.Touchpoint, directory: CallDirectory, call_id: str,
                 committer: GroupCommit | None = None,
                 on_step: StepObserver | None = None) -> Recorded:
    """Record one step: through the group commit when given, else on a worker thread
    (the write model is synchronous). ``on_step`` hears of the step first: a ringing
    phone is news before its step is durable."""
    if on_step is not None and isinstance(cmd, m.RecordCallStep):
        on_step(cmd)
    if committer is None:
        return await run_in_threadpool(_execute, hub, cmd, directory, call_id)
    cmd = await run_in_threadpool(_resolved, hub, cmd, directory, call_id)
    try:
        outcome = await asyncio.wrap_future(committer.submit(cmd))
    except ConcurrencyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from exc
    if outcome.recorded is None:
        raise HTTPException(422, outcome.error or "not recorded")
    result = outcome.recorded
    if (result.customer_id and not result.held_for_triage
            and not directory.remembers(call_id, result.customer_id)):
        # A write (on PostgreSQL a pool checkout and a round trip): on the event loop it
        # held up every other request meanwhile, once per new call.
        await run_in_threadpool(directory.remember, call_id, result.customer_id)
    return result


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
