"""Erasure and subject export over HTTP (roles ``privacy`` and ``admin``).

``POST /commands/erase-customer`` runs the same erasure as ``touchstream customer
erase``; ``GET /customers/{customer_id}/export`` streams the same zip as
``touchstream customer export`` (built in a spooled temporary file, so memory
stays bounded however long the history) and is recorded in the read audit.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at
runtime, including names local to the factory.
"""

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from commands.errors import CustomerNotFoundError
from projections.summary.view import SummaryView
from projections.timeline.view import TimelineView
from touchstream.audit_routes import record_read
from touchstream.audit_wiring import access_recorder
from touchstream.privacy.export import export_subject

CHUNK = 1 << 16
SPOOL_BYTES = 8 << 20  # exports up to this size stay in memory, larger ones on disk


class EraseCustomerIn(BaseModel):
    """Erase a person's personal data (every record of their merge group)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"customer_id": "8d0f5c1e-3b1a-4f7e-9a51-7b0c2d9e4f10", "reason": "DSR-2026-117"}]})

    customer_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$",
                                 description="A case or ticket reference; no personal data.")]


class ErasurePublic(BaseModel):
    """What an erasure did: ids and counts only."""

    customer_id: str
    erased: list[str] = Field(description="Every record of the person that was erased.")
    duplicate: bool = Field(description="True when the person had been erased already.")
    event_ids: list[str]
    blobs_shredded: int = Field(description="Blobs named by the person's events: key "
                                            "destroyed, file overwritten and removed.")
    held_erased: int = Field(description="Triage items naming the person, made unreadable.")
    quarantine_rows_removed: int = Field(description="Quarantined CDR rows naming the person.")
    calls_forgotten: int = Field(description="Call-directory entries of the person.")
    mail_quarantine_erased: int = Field(
        default=0, description="Messages the email channel kept aside that name the person: "
                               "made unreadable, their bytes shredded.")
    mail_ledger_rows_erased: int = Field(
        default=0, description="IMAP ledger rows of the person's messages turned to `erased`.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such customer."},
}


def privacy_routes(context: Any) -> Any:
    """A ``RouterFactory`` for the erasure and export routes."""
    router = APIRouter(tags=["privacy"], responses=_ERRORS)
    officer = context.authorize("privacy")
    deps = context.deps

    @router.post(
        "/commands/erase-customer", status_code=201, response_model=ErasurePublic,
        summary="Erase a person's personal data (log, counts and rebuilds stay)",
        responses={200: {"description": "Already erased (duplicate).", "model": ErasurePublic}},
    )
    def erase_customer(body: Annotated[EraseCustomerIn, Body()],
                       who: Annotated[Any, Depends(officer)]) -> Any:
        try:
            report = deps.eraser.erase(body.customer_id, body.reason, actor=f"api:{who.key_id}")
        except CustomerNotFoundError as exc:
            raise HTTPException(404, detail=str(exc)) from exc
        out = ErasurePublic(customer_id=str(body.customer_id), erased=report.customers,
                            duplicate=report.recorded.duplicate,
                            event_ids=list(report.recorded.event_ids),
                            blobs_shredded=report.blobs_shredded,
                            held_erased=report.held_erased,
                            quarantine_rows_removed=report.quarantine_rows_removed,
                            calls_forgotten=report.calls_forgotten,
                            mail_quarantine_erased=report.mail_quarantine_erased,
                            mail_ledger_rows_erased=report.mail_ledger_rows_erased)
        return JSONResponse(out.model_dump(), status_code=200 if out.duplicate else 201)

    @router.get(
        "/customers/{customer_id}/export", response_class=Response,
        summary="Everything held about a person, as one zip (subject access request)",
        responses={200: {"description": "The export zip (events, read models, blobs, "
                                        "manifest with SHA-256 per part).",
                         "content": {"application/zip": {}}}},
    )
    def export_customer(customer_id: UUID, request: Request,
                        who: Annotated[Any, Depends(officer)]) -> Any:
        store = deps.read_store
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            export_subject(deps.hub, SummaryView(store), TimelineView(store), deps.blobs,
                           customer_id, spool)
        except CustomerNotFoundError as exc:
            spool.close()
            raise HTTPException(404, detail=str(exc)) from exc
        record_read(access_recorder(deps.settings), request, who, str(customer_id))
        spool.seek(0)
        return StreamingResponse(
            _chunks(spool), media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{customer_id}.zip"',
                     "Cache-Control": "no-store"})

    return router


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()

