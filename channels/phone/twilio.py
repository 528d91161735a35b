"""Twilio-compatible voice webhooks: call status callbacks and recording callbacks.

Every request is checked against ``X-Twilio-Signature`` over the *public* URL
(from configuration, so it holds behind a proxy) before anything is recorded;
a failure answers 403 and records nothing. Each callback becomes one
``RecordCallStep`` whose source key identifies the delivery, so retries record
nothing new. Ordering is not decided here: the step carries Twilio's
``SequenceNumber`` and the call summary (``domain.calls``) uses the highest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError

from channels.bodies import form_pairs, media_type, read_capped
from channels.phone.config import TwilioConfig
from channels.phone.directory import CallDirectory
from channels.phone.group_commit import GroupCommit
from channels.phone.signatures import SignatureError, public_url, verify_twilio
from channels.phone.signed import WEBHOOK_RESPONSES
from channels.phone.steps import HubProvider, StepObserver, accepted, describe, record
from commands import messages as m

# Twilio's CallStatus → the step it reports.
STATUS_STEPS = {
    "initiated": "offered",
    "queued": "queued",
    "ringing": "ringing",
    "in-progress": "answered",
    "answered": "answered",
    "completed": "ended",
    "busy": "busy",
    "failed": "failed",
    "no-answer": "missed",
    "canceled": "abandoned",
}
# Callback fields kept on the step as details (renamed to Touchstream's words).
DETAIL_FIELDS = {
    "CallDuration": "duration_s",
    "Timestamp": "provider_timestamp",
    "CallbackSource": "callback_source",
    "ParentCallSid": "parent_call_id",
    "ForwardedFrom": "forwarded_from",
    "CallerName": "caller_name",
    "AccountSid": "account_sid",
    "AnsweredBy": "answered_by",
    "SipResponseCode": "sip_response_code",
    "RecordingSid": "recording_sid",
    "RecordingUrl": "recording_url",
    "RecordingDuration": "recording_duration_s",
    "RecordingStatus": "recording_status",
    "RecordingChannels": "recording_channels",
}
TOKEN_HEADER = "I-Twilio-Idempotency-Token"


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values and values[0] != "" else None


def _occurred_at(params: dict[str, list[str]]) -> datetime | None:
    raw = _first(params, "Timestamp") or _first(params, "RecordingStartTime")
    if raw is None:
        return None
    try:
        stamp = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return stamp if stamp.tzinfo is not None else None


def _direction(params: dict[str, list[str]]) -> str:
    return "outbound" if (_first(params, "Direction") or "").startswith("outbound") else "inbound"


def _details(params: dict[str, list[str]]) -> dict[str, str]:
    return {ours: v[:2000] for theirs, ours in DETAIL_FIELDS.items()
            if (v := _first(params, theirs)) is not None}


def _delivery_key(kind: str, params: dict[str, list[str]], token: str | None) -> str:
    """Same callback → same key. The natural key (call, sequence, status) is preferred
    because it also catches a callback re-sent under a new idempotency token."""
    sid = _first(params, "CallSid") or ""
    if kind == "status" and _first(params, "SequenceNumber") is not None:
        return (f"twilio:{sid}:status:{_first(params, 'SequenceNumber')}:"
                f"{_first(params, 'CallStatus')}")
    if kind == "recording" and _first(params, "RecordingSid") is not None:
        return (f"twilio:{sid}:recording:{_first(params, 'RecordingSid')}:"
                f"{_first(params, 'RecordingStatus') or 'completed'}")
    if token:
        return f"twilio:{sid}:{kind}:token:{token}"
    canonical = json.dumps(sorted((k, sorted(v)) for k, v in params.items()))
    return f"twilio:{sid}:{kind}:sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


async def _verified_params(request: Request, config: TwilioConfig) -> dict[str, list[str]]:
    body = await read_capped(request, config.max_body_bytes)
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = public_url(config.public_base_url, request.url.path, query)
    signature = request.headers.get("x-twilio-signature")
    kind = media_type(request)
    try:
        if kind == "application/json":
            verify_twilio(config.auth_token, url, {}, signature, body=body)
            return _json_params(body)
        if kind not in ("application/x-www-form-urlencoded", ""):
            raise HTTPException(415, f"unsupported content type {kind!r}")
        params: dict[str, list[str]] = {}
        for name, value in form_pairs(body):
            params.setdefault(name, []).append(value)
        verify_twilio(config.auth_token, url, params, signature)
        return params
    except SignatureError as exc:
        raise HTTPException(403, f"signature rejected: {exc}") from exc


def _json_params(body: bytes) -> dict[str, list[str]]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise HTTPException(400, "JSON body must be an object")
    return {str(k): [str(v)] for k, v in data.items() if v is not None}


def _require(params: dict[str, list[str]], names: Sequence[str]) -> None:
    missing = [n for n in names if _first(params, n) is None]
    if missing:
        raise HTTPException(422, f"missing fields: {', '.join(missing)}")


def _sequence(params: dict[str, list[str]]) -> int:
    raw = _first(params, "SequenceNumber")
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError as exc:
        raise HTTPException(422, "SequenceNumber is not an integer") from exc
    if value < 0:
        raise HTTPException(422, "SequenceNumber is negative")
    return value


def status_command(params: dict[str, list[str]], token: str | None) -> m.RecordCallStep:
    """The call step a status callback reports."""
    _require(params, ["CallSid", "CallStatus"])
    status = (_first(params, "CallStatus") or "").lower()
    step = STATUS_STEPS.get(status)
    if step is None:
        raise HTTPException(422, f"unknown CallStatus {status!r}")
    return _step_command(params, token, step, "status")


def recording_command(params: dict[str, list[str]], token: str | None) -> m.RecordCallStep:
    """A recording callback: the step "recording-available" (no effect on the call's state)."""
    _require(params, ["CallSid", "RecordingSid"])
    return _step_command(params, token, "recording-available", "recording")


def _step_command(
    params: dict[str, list[str]], token: str | None, step: str, delivery: str
) -> m.RecordCallStep:
    return m.RecordCallStep(
        call_id=_first(params, "CallSid"),  # type: ignore[arg-type]
        step=step,  # type: ignore[arg-type]
        sequence=_sequence(params),
        direction=_direction(params),  # type: ignore[arg-type]
        from_number=_first(params, "From"),
        to_number=_first(params, "To"),
        details=_details(params),
        occurred_at=_occurred_at(params),
        source_key=_delivery_key(delivery, params, token),
        actor="twilio",
    )


def _build(
    make: Callable[[dict[str, list[str]], str | None], m.RecordCallStep],
    params: dict[str, list[str]],
    token: str | None,
) -> m.RecordCallStep:
    try:
        return make(params, token)
    except ValidationError as exc:
        raise HTTPException(422, describe(exc)) from exc


def twilio_router(
    get_hub: HubProvider, config: TwilioConfig, directory: CallDirectory,
    committer: GroupCommit | None = None, on_step: StepObserver | None = None,
) -> APIRouter:
    """``POST /webhooks/twilio/voice/status`` and ``…/recording`` (signature-authenticated).

    With ``committer``, concurrent callbacks are recorded in shared transactions;
    ``on_step`` hears of each verified step (the console's live screen-pop)."""
    router = APIRouter(prefix="/webhooks/twilio/voice", tags=["webhooks: phone"],
                       responses=WEBHOOK_RESPONSES)

    @router.post("/status", summary="Twilio call status callback")
    async def status_callback(
        request: Request,
    ) -> dict[str, Any]:
        params = await _verified_params(request, config)
        cmd = _build(status_command, params, request.headers.get(TOKEN_HEADER))
        return accepted(await record(get_hub, cmd, directory, cmd.call_id, committer, on_step))

    @router.post("/recording", summary="Twilio recording status callback")
    async def recording_callback(
        request: Request,
    ) -> dict[str, Any]:
        params = await _verified_params(request, config)
        cmd = _build(recording_command, params, request.headers.get(TOKEN_HEADER))
        return accepted(await record(get_hub, cmd, directory, cmd.call_id, committer, on_step))

    return router
