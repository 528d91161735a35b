"""``GET /quality/duplicates`` and ``GET /quality/completeness``: data-quality reports
(admin and analyst keys). Pairs name ids and reasons only, no personal data; accept
one with ``POST /commands/accept-duplicate`` (the reversible merge) or reject it with
``POST /commands/reject-duplicate`` (never suggested again)."""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from projections.quality.view import DEFAULT_THRESHOLD
from read_api.dependencies import (
    QUALITY_ROLES,
    MinPosition,
    OrjsonResponse,
    Principal,
    ReadDeps,
    responses,
)

_A = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_B = "6f1e0b7c-2c52-4c38-9a55-1f7f0a3c1e22"


class DuplicatePairPublic(BaseModel):
    kind: Literal["customer", "account"]
    first_id: str
    second_id: str
    score: float = Field(description="1 − Π(1 − weight) over the reasons, 0…1.")
    reasons: list[str]


class DuplicatesPublic(BaseModel):
    threshold: float
    pairs: list[DuplicatePairPublic] = Field(description="Best first.")
    more: bool = Field(description="More pairs above the threshold than `limit`.")
    skipped_blocks: int = Field(description="Companies or postcodes too large to compare "
                                            "names within.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "threshold": 0.8, "more": False, "skipped_blocks": 0, "pairs": [{
            "kind": "customer", "first_id": _A, "second_id": _B, "score": 0.99,
            "reasons": ["same email (canonical)",
                        "names 95% alike within the same company"]}]}]})


class CompletenessPublic(BaseModel):
    as_of: str
    months: int
    consent: dict[str, int] = Field(description=(
        "Customers (survivors, not erased) with_valid_consent (of any channel and purpose on "
        "as_of), without_valid_consent, and of those withdrawn_or_expired (had consent)."))
    owners: dict[str, dict[str, int]] = Field(description=(
        "Per owner ('(no owner)' for none): customers, no_usable_contact_point, no_owner, "
        "not_reached, no_valid_consent, unusable_contact_points, accounts, accounts_no_owner, "
        "accounts_no_vat."))
    unusable: list[dict[str, Any]] = Field(description="The latest 100 contact points proved "
                                                       "unusable (customer, kind, reason, when).")


def router(deps: ReadDeps) -> APIRouter:
    router = APIRouter(tags=["quality"])
    view = deps.views.quality
    reader = deps.reader(*QUALITY_ROLES)

    @router.get("/quality/duplicates", summary="Likely duplicate customers and accounts",
                response_class=OrjsonResponse, response_model=DuplicatesPublic,
                responses=responses(409, 503))
    async def duplicates(
        who: Annotated[Principal, Depends(reader)],
        kind: Literal["customer", "account"] | None = None,
        threshold: Annotated[float, Query(ge=0.5, le=1.0)] = DEFAULT_THRESHOLD,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        return OrjsonResponse(await deps.call(lambda: view.duplicates(
            kind=kind, threshold=threshold, limit=limit)))

    @router.get("/quality/completeness",
                summary="Missing contact points and owners, contacts not reached, per owner",
                response_class=OrjsonResponse, response_model=CompletenessPublic,
                responses=responses(409, 503))
    async def completeness(
        who: Annotated[Principal, Depends(reader)],
        as_of: AwareDatetime | None = None,
        months: Annotated[int, Query(ge=1, le=120)] = 12,
        min_position: Annotated[int | None, MinPosition] = None,
    ) -> OrjsonResponse:
        await deps.reached([view], min_position)
        when = as_of or datetime.now(UTC)
        return OrjsonResponse(await deps.call(lambda: view.completeness(as_of=when,
                                                                        months=months)))

    return router
