"""Generic CTI webhook: PBXs post ``newCall`` / ``answer`` / ``hangup`` events.

Authenticated by ``X-Touchstream-Signature: sha256=<hex>`` — HMAC-SHA256 with a
shared secret over ``<X-Touchstream-Timestamp>.<raw body>`` — and a timestamp
window, so a captured request cannot be replayed later (within the window
replays are absorbed by the source key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from channels.phone.config import CtiConfig
from channels.phone.directory import CallDirectory
from channels.phone.group_commit import GroupCommit
from channels.phone.signed import WEBHOOK_RESPONSES, signed_json_body
from channels.phone.steps import HubProvider, StepObserver, accepted, describe, record
from commands import messages as m

# Without a sequence from the PBX, the events' own order within a call.
EVENT_SEQUENCE = {"newCall": 1, "answer": 2, "hangup": 3}
# Hang-up causes PBXs report → the step they mean; anything else is a normal end.
HANGUP_CAUSES = {
    "no-answer": "missed", "noanswer": "missed", "no_answer": "missed", "timeout": "missed",
    "abandoned": "abandoned", "caller-abandoned": "abandoned", "abandon": "abandoned",
    "busy": "busy", "failed": "failed", "congestion": "failed", "error": "failed",
    "voicemail": "voicemail",
}
Text = Annotated[str, Field(min_length=1, max_length=200)]


class CtiEvent(BaseModel):
    """One event as a PBX posts it (camelCase, unknown fields refused)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    event: Literal["newCall", "answer", "hangup"]
    call_id: Text = Field(alias="callId")
    from_number: Text | None = Field(default=None, alias="from")
    to_number: Text | None = Field(default=None, alias="to")
    direction: Literal["inbound", "outbound"] = "inbound"
    queue: Text | None = None
    agent: Text | None = None
    ivr_choices: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = (
        Field(default_factory=list, alias="ivrChoices"))
    cause: Text | None = None
    timestamp: AwareDatetime | None = None
    sequence: Annotated[int, Field(ge=0)] | None = None


def _step(event: CtiEvent) -> str:
    if event.event == "newCall":
        return "queued" if event.queue else "offered"
    if event.event == "answer":
        return "answered"
    return HANGUP_CAUSES.get((event.cause or "").lower(), "ended")


def cti_command(event: CtiEvent) -> m.RecordCallStep:
    """The call step a CTI event reports."""
    sequence = event.sequence if event.sequence is not None else EVENT_SEQUENCE[event.event]
    details: dict[str, str] = {"cti_event": event.event}
    if event.cause:
        details["cause"] = event.cause
    if event.ivr_choices:
        details["ivr_choices"] = ",".join(event.ivr_choices)
    occurred: datetime | None = event.timestamp
    return m.RecordCallStep(
        call_id=event.call_id,
        step=_step(event),  # type: ignore[arg-type]
        sequence=sequence,
        direction=event.direction,
        from_number=event.from_number,
        to_number=event.to_number,
        queue=event.queue,
        agent=event.agent,
        details=details,
        occurred_at=occurred,
        source_key=f"cti:{event.call_id}:{event.event}:{sequence}",
        actor="cti",
    )


def cti_router(get_hub: HubProvider, config: CtiConfig, directory: CallDirectory,
               committer: GroupCommit | None = None,
               on_step: StepObserver | None = None) -> APIRouter:
    """``POST /webhooks/cti``: one JSON event per request, HMAC-signed; ``on_step`` hears of
    each verified step (the console's live screen-pop)."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks: phone"],
                       responses=WEBHOOK_RESPONSES)

    @router.post("/cti", summary="PBX call event (newCall, answer, hangup)")
    async def cti_event(
        request: Request,
    ) -> dict[str, Any]:
        body = await signed_json_body(request, config, "CTI events")
        try:
            cmd = cti_command(CtiEvent.model_validate_json(body))
        except ValidationError as exc:
            raise HTTPException(422, describe(exc)) from exc
        return accepted(await record(get_hub, cmd, directory, cmd.call_id, committer, on_step))

    return router
