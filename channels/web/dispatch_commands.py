"""Field dispatch over HTTP: one command route per work-order transition (merged into
``channels.web.command_routes``), and ``POST /dispatch/signatures`` to store a customer's
signature image in the sealed blob store before the work done names it.

Roles: dispatchers plan (create, schedule, assign, reassign, close, cancel; service
staff may create from a case and cancel); the technician's own steps (accept, decline,
en route, arrived, work done) come from a dispatcher or the field app's ``adapter`` key.
A refused move answers 409 with the reason (``domain.dispatch``), an unknown technician
404, bad input 422.
"""

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from channels.blobs import BlobStore
from commands import dispatch as cd
from commands import messages as m

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_WO = "3f1c2e6a-9b7d-4c1e-8f2a-5d6b7c8e9f01"
_TECH = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
_OTHER = "1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a"
_ORDER = {"customer_id": _CID, "work_order_id": _WO}
_STEP = {**_ORDER, "technician_id": _TECH}

_PLAN = ("dispatcher",)
_FIELD = ("dispatcher", "adapter")

#: route name → roles admitted (admin is always admitted by ``authorize``)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    "register-technician": _PLAN,
    "change-technician-skills": _PLAN,
    "create-work-order": ("dispatcher", "service"),
    "schedule-work-order": _PLAN,
    "assign-technician": _PLAN,
    "reassign-technician": _PLAN,
    "accept-work-order": _FIELD,
    "decline-work-order": _FIELD,
    "start-travel": _FIELD,
    "record-arrival": _FIELD,
    "record-work-done": _FIELD,
    "close-work-order": _PLAN,
    "cancel-work-order": ("dispatcher", "service"),
}

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "register-technician": (cd.RegisterTechnician, "Register a field technician", {
        "technician_id": _TECH, "handle": "jonas", "skills": ["boiler", "gas"],
        "day_minutes": 480}),
    "change-technician-skills": (cd.ChangeTechnicianSkills, "Replace a technician's skills", {
        "technician_id": _TECH, "skills": ["boiler", "gas", "heat-pump"]}),
    "create-work-order": (cd.CreateWorkOrder, "Create a work order", {
        **_ORDER, "case_id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "skill": "boiler",
        "address": "1 Mill Lane, Leeds LS1 4AP", "summary": "No hot water since Monday",
        "priority": "high", "window_start": "2026-11-25T08:00:00+00:00",
        "window_end": "2026-11-25T12:00:00+00:00"}),
    "schedule-work-order": (cd.ScheduleWorkOrder, "Plan a work order's window", {
        **_ORDER, "window_start": "2026-11-25T09:00:00+00:00",
        "window_end": "2026-11-25T11:00:00+00:00"}),
    "assign-technician": (cd.AssignTechnician, "Assign a technician (overlaps refused)",
                          dict(_STEP)),
    "reassign-technician": (cd.ReassignTechnician, "Give the work order to another technician",
                            {**_ORDER, "technician_id": _OTHER}),
    "accept-work-order": (cd.AcceptWorkOrder, "The technician accepts", dict(_STEP)),
    "decline-work-order": (cd.DeclineWorkOrder, "The technician declines", {
        **_STEP, "reason": "van in for repair"}),
    "start-travel": (cd.StartTravel, "The technician is on the way", {
        **_STEP, "eta": "2026-11-25T09:20:00+00:00"}),
    "record-arrival": (cd.RecordArrival, "The technician arrived (real time, kept when synced late)",
                       {**_STEP, "occurred_at": "2026-11-25T09:14:00+00:00"}),
    "record-work-done": (cd.RecordWorkDone, "Work done: parts, time, signature", {
        **_STEP, "parts": [{"part": "valve-22mm", "quantity": 2}], "minutes_spent": 75,
        "signature_ref": "4f2a" * 16, "notes": "Replaced diverter valve",
        "occurred_at": "2026-11-25T10:31:00+00:00"}),
    "close-work-order": (cd.CloseWorkOrder, "Write a finished work order off", {
        **_ORDER, "reason": "invoiced"}),
    "cancel-work-order": (cd.CancelWorkOrder, "Cancel a work order", {
        **_ORDER, "reason": "customer fixed it"}),
}

#: What a signature image may be: its declared type and the bytes it must start with.
SIGNATURE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
MAX_SIGNATURE_BYTES = 512 * 1024


class SignatureStoredPublic(BaseModel):
    """Where the signature is stored: pass ``signature_ref`` to record-work-done."""

    signature_ref: str = Field(description="Blob address (64 hex digits).")
    size: int
    content_type: str
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "signature_ref": "4f2a" * 16, "size": 18211, "content_type": "image/png"}]})


def signature_router(authorize: Callable[..., Any], blobs: Callable[[], BlobStore]) -> APIRouter:
    """``POST /dispatch/signatures``: a PNG or JPEG body, stored sealed; its address back."""
    router = APIRouter(tags=["dispatch"])
    who = authorize(*_FIELD)

    @router.post(
        "/dispatch/signatures", status_code=201, response_model=SignatureStoredPublic,
        summary="Store a customer's signature image (PNG or JPEG)",
        responses={401: {"description": "Missing or unknown API key"},
                   403: {"description": "The key's role may not call this route"},
                   413: {"description": "Larger than 512 kB"},
                   415: {"description": "Not a PNG or JPEG image"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}})
    async def store(
        request: Request,
        principal: Annotated[Any, Depends(who)],
        content_type: Annotated[str, Header(alias="Content-Type")] = "",
    ) -> SignatureStoredPublic:
        kind = content_type.split(";")[0].strip().lower()
        magic = SIGNATURE_TYPES.get(kind)
        if magic is None:
            raise HTTPException(415, detail="a signature must be image/png or image/jpeg")
        data = await request.body()
        if len(data) > MAX_SIGNATURE_BYTES:
            raise HTTPException(413, detail=f"a signature may be at most "
                                            f"{MAX_SIGNATURE_BYTES} bytes")
        if not data.startswith(magic):
            raise HTTPException(415, detail=f"the body is not a {kind} image")
        address = await run_in_threadpool(blobs().put, data)  # fsync: off the event loop
        return SignatureStoredPublic(signature_ref=address, size=len(data), content_type=kind)

    return router
