"""Template routes: read a message template's versions, and preview one rendered against
a customer's data without sending or recording anything.

``GET /templates/{name}`` shows every version per language (templates hold no personal
data). ``POST /templates/{name}/preview`` renders the version a send would use (the
customer's language, else the template's fallback) in the same sandbox as a send; it
shows the customer's data, so the read is recorded in the read audit first. A template
that does not render answers 409 with the reason, an unknown template or customer 404.
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from commands import replies as rc
from commands.errors import CustomerNotFoundError
from commands.records import RecordNotFoundError
from domain.errors import DomainError
from touchstream.app import AppContext

TEMPLATE_ROLES = ("agent", "sales", "service", "marketing")
_NAME = Path(pattern=r"^[A-Za-z0-9_.:@/-]{1,100}$", openapi_examples={
    "auto-ack": {"value": "auto-ack"}})


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11", "language": "de",
        "variables": {"subject": "Boiler broken"},
        "case_id": "5d1f0c8e-3a4b-4c2d-9e8f-0a1b2c3d4e5f"}]})

    customer_id: UUID
    variables: rc.Variables = Field(default_factory=dict)
    language: rc.Language | None = None
    case_id: UUID | None = None


class PreviewPublic(BaseModel):
    template_id: str
    name: str
    channel: str
    language: str
    version: int
    subject: str
    body_text: str
    body_html: str | None


class TemplateVersionPublic(BaseModel):
    version: int
    subject: str
    body_text: str
    body_html: str | None


class TemplatePublic(BaseModel):
    template_id: str
    name: str
    channel: str
    fallback_language: str
    latest: int
    versions: dict[str, list[TemplateVersionPublic]] = Field(
        description="Every version per language, oldest first.")


def replies_routes(ctx: AppContext) -> APIRouter:
    from touchstream.read_side import read_audit

    router = APIRouter(tags=["replies"])
    reader = ctx.authorize(*TEMPLATE_ROLES)
    audit = read_audit(ctx.deps)

    def template(name: str) -> Any:
        try:
            return rc.template(ctx.hub(), name)
        except RecordNotFoundError as exc:
            raise HTTPException(404, detail=f"no template {name!r}") from exc

    @router.get("/templates/{name}", summary="A message template's versions per language",
                response_model=TemplatePublic, responses={404: {"description": "No template"}})
    def show(name: Annotated[str, _NAME], who: Annotated[Any, Depends(reader)]) -> TemplatePublic:
        found = template(name)
        return TemplatePublic(template_id=str(found.id), name=found.name,
                              channel=found.template_channel,
                              fallback_language=found.fallback_language, latest=found.latest,
                              versions={k: [TemplateVersionPublic(**v) for v in vs]
                                        for k, vs in found.versions.items()})

    @router.post("/templates/{name}/preview", summary="Render a template against a "
                 "customer's data (nothing is sent or recorded)", response_model=PreviewPublic,
                 responses={404: {"description": "No such template or customer"},
                            409: {"description": "The template does not render (reason)"}})
    async def preview(name: Annotated[str, _NAME], body: Annotated[PreviewIn, Body()],
                      request: Request, who: Annotated[Any, Depends(reader)]) -> PreviewPublic:
        await audit.record(request, who, str(body.customer_id))

        def render() -> dict[str, Any]:
            try:
                return rc.preview(ctx.hub(), name, body.customer_id,
                                  variables=dict(body.variables), language=body.language,
                                  case_id=None if body.case_id is None else str(body.case_id))
            except RecordNotFoundError as exc:
                raise HTTPException(404, detail=f"no template {name!r}") from exc
            except CustomerNotFoundError as exc:
                raise HTTPException(404, detail=str(exc)) from exc
            except DomainError as exc:
                raise HTTPException(409, detail=str(exc)) from exc

        return PreviewPublic(**await run_in_threadpool(render))

    return router
