"""HTTP as a channel: one POST per command, turned into a command message for the Hub.

No business rules here: the route validates the body (pydantic), applies the
``Idempotency-Key`` header, runs the command and translates the write model's
errors into HTTP statuses:

==================================================  ======
``CustomerNotFoundError``                           404
``RecordNotFoundError`` (no such account, campaign…)  404
``TouchpointUnknownError`` (void/correct)           404
``InvalidContactPointError`` (bad address)          422
``FutureOccurrenceError`` (date too far on)         422
``InvalidInputError`` (bad amount, total ≠ lines)   422
``ConflictError``, ``DomainError``                  409 (contact point taken, merged customer,
                                                    forbidden lifecycle move, invalid stage…)
``ConcurrencyError``                                503 with ``Retry-After`` (safe to retry)
==================================================  ======

A new recording answers **201**; a duplicate (same source key) or a command
that changed nothing answers **200** with the first call's result. A
touchpoint from an unknown sender, when ``TOUCHSTREAM_UNKNOWN_CONTACTS=triage``,
is held whole for triage and answers **202** with ``held_for_triage: true`` and
no customer (``touchstream triage`` assigns it later, under the same source
key, so a retry of the request still records it once).

``Idempotency-Key``: when the body has no ``source_key`` and the command has no
natural id of its own (a call id, a Message-ID…), the header becomes the
source key, scoped to the calling API key (``http:<key id>:<header>``), so a
retry records nothing new. A natural id always wins: a call delivered once with
a header and once without is still one event. The same header with a different
body on the same route answers 409. That namespace belongs to the header: a
body ``source_key`` starting with ``http:`` (or ``prospect:``, the write
model's own registrations of unknown senders) answers 422, so no key can take
or read another key's results by spelling its scoped key.

A touchpoint dated more than ``TOUCHSTREAM_MAX_FUTURE_SKEW_S`` ahead of the
hub's clock answers 422 (``FutureOccurrenceError``). Text containing a NUL
character (U+0000) answers 422 and nothing is stored (the command messages
refuse it; PostgreSQL text could not hold it).

The factory takes its dependencies: a hub provider, the ``authorize(*roles)``
dependency factory, an optional fingerprint ledger, and the role table.
"""

import hashlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Response
from pydantic import BaseModel, Field

from channels.web import (
    accounts_commands,
    dispatch_commands,
    knowledge_commands,
    marketing_commands,
    replies_commands,
    sales_commands,
    service_commands,
    work_commands,
)
from commands import messages as m
from commands.hub import (
    ConcurrencyError,
    ConflictError,
    CustomerNotFoundError,
    Hub,
)
from commands.identity import InvalidContactPointError
from commands.ports import Recorded
from commands.records import RecordNotFoundError
from domain.errors import (
    DomainError,
    FutureOccurrenceError,
    InvalidInputError,
    TouchpointUnknownError,
)

PREFIX = "/commands"
#: Source keys the routes build from ``Idempotency-Key`` (``http:<key id>:<header>``).
SCOPED_KEY_PREFIX = "http:"
#: Namespaces a body ``source_key`` may not enter: the header-scoped keys, and the
#: write model's own prospect registrations (``prospect:<contact>``), which a
#: client key could otherwise pre-empt to capture an unknown sender's touchpoints.
RESERVED_KEY_PREFIXES = (SCOPED_KEY_PREFIX, "prospect:")


class PrincipalLike(Protocol):
    """The caller, as ``authorize`` identifies it."""

    @property
    def key_id(self) -> str: ...

    @property
    def name(self) -> str: ...


class FingerprintLedger(Protocol):
    """Remembers the first body hash sent under an idempotency scope."""

    def fingerprint(self, scope: str) -> str | None: ...

    def remember(self, scope: str, body_sha256: str) -> None: ...


HubProvider = Callable[[], Hub]
Authorize = Callable[..., Callable[..., PrincipalLike]]

_TOUCH = ("agent", "sales", "marketing", "service", "dispatcher", "adapter")
_STAFF = ("agent", "sales", "service")

#: route name → roles admitted (admin is always admitted by ``authorize``).
#: analyst and auditor are read-only; partner keys are not admitted on writes
#: because "only customers assigned to this partner" needs a read model.
_CORE_ROLES: Mapping[str, tuple[str, ...]] = {
    "register-customer": (*_STAFF, "marketing", "adapter"),
    "change-profile": _STAFF,
    "add-contact-point": _STAFF,
    "remove-contact-point": _STAFF,
    "change-lifecycle-stage": ("sales", "marketing", "service"),
    "add-note": ("agent", "sales", "marketing", "service", "dispatcher"),
    "assign-partner": ("sales",),
    "merge-customers": ("service",),
    "unmerge-customer": ("service",),
    "void-touchpoint": _STAFF,
    "correct-touchpoint": _STAFF,
    "log-call": _TOUCH,
    "record-call-step": _TOUCH,
    "request-callback": _TOUCH,
    "complete-callback": _TOUCH,
    "record-email": _TOUCH,
    "record-fax": _TOUCH,
    "record-visit": _TOUCH,
    "record-web-form": _TOUCH,
}

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_NOW = "2026-11-24T09:30:00+00:00"

#: route name → (command model, summary, example body)
_CORE_COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "register-customer": (m.RegisterCustomer, "Register a customer", {
        "name": "Ada Lovelace", "company": "Analytical Engines Ltd",
        "contact_points": [{"kind": "email", "value": "ada@example.com"},
                           {"kind": "phone", "value": "+44 20 7946 0018"}],
        "source_key": "crm-import:42"}),
    "change-profile": (m.ChangeProfile, "Change profile fields", {
        "customer_id": _CID, "changes": {"company": "Difference Engines plc", "title": "CTO"}}),
    "add-contact-point": (m.AddContactPoint, "Add an email, phone or fax", {
        "customer_id": _CID, "contact": {"kind": "fax", "value": "+44 20 7946 0999",
                                         "label": "office"}}),
    "remove-contact-point": (m.RemoveContactPoint, "Remove a contact point", {
        "customer_id": _CID, "contact": {"kind": "email", "value": "ada@example.com"},
        "reason": "bounced"}),
    "change-lifecycle-stage": (m.ChangeLifecycleStage, "Move along the lifecycle", {
        "customer_id": _CID, "to_stage": "current", "reason": "signed contract"}),
    "add-note": (m.AddNote, "Add a note", {
        "customer_id": _CID, "text": "Prefers calls after 2pm.", "visibility": "internal"}),
    "assign-partner": (m.AssignPartner, "Assign (or unassign) a partner", {
        "customer_id": _CID, "partner_id": "acme-resellers"}),
    "merge-customers": (m.MergeCustomers, "Merge a duplicate into a customer", {
        "source_id": "6f1e0b7c-2c52-4c38-9a55-1f7f0a3c1e22", "target_id": _CID}),
    "unmerge-customer": (m.UnmergeCustomer, "Undo a merge", {
        "source_id": "6f1e0b7c-2c52-4c38-9a55-1f7f0a3c1e22"}),
    "void-touchpoint": (m.VoidTouchpoint, "Void a touchpoint recorded by mistake", {
        "customer_id": _CID, "event_id": "9a3f4c1e-2b7d-4e8f-a1c5-6d0e2f4b8a17",
        "reason": "test call, not a customer contact"}),
    "correct-touchpoint": (m.CorrectTouchpoint, "Correct a touchpoint's date or text", {
        "customer_id": _CID, "event_id": "9a3f4c1e-2b7d-4e8f-a1c5-6d0e2f4b8a17",
        "corrected_occurred_at": "2026-11-21T14:00:00+00:00",
        "changes": {"summary": "Boiler serviced; filter replaced"},
        "reason": "visit logged with the tablet's wrong date"}),
    "log-call": (m.LogCall, "Log a call", {
        "call_id": "CA1234", "direction": "inbound", "from_number": "+44 20 7946 0018",
        "to_number": "+44 20 7946 0000", "queue": "support", "agent": "mia",
        "ivr_choices": ["2", "1"], "outcome": "answered", "duration_s": 312, "wait_s": 41,
        "occurred_at": _NOW}),
    "record-call-step": (m.RecordCallStep, "Record one step of a call", {
        "call_id": "CA1234", "step": "queued", "sequence": 2, "from_number": "+44 20 7946 0018",
        "queue": "support", "occurred_at": _NOW}),
    "request-callback": (m.RequestCallback, "Record a callback request", {
        "callback_id": "cb-981", "number": "+44 20 7946 0018",
        "requested_for": "2026-11-25T14:00:00+00:00", "reason": "billing question"}),
    "complete-callback": (m.CompleteCallback, "Record a callback as done", {
        "customer_id": _CID, "callback_id": "cb-981", "outcome": "reached",
        "call_id": "CA2000"}),
    "record-email": (m.RecordEmail, "Record an email", {
        "message_id": "<abc@mail.example.com>", "direction": "inbound",
        "from_address": "ada@example.com", "to": ["support@example.org"],
        "subject": "Invoice question", "body_text": "Hello, ...", "occurred_at": _NOW}),
    "record-fax": (m.RecordFax, "Record a fax", {
        "fax_id": "fx-77", "direction": "inbound", "from_number": "+44 20 7946 0999",
        "to_number": "+44 20 7946 0001", "pages": 3, "status": "complete"}),
    "record-visit": (m.RecordVisit, "Record an office or field visit", {
        "customer_id": _CID, "visit_id": "tablet-7:2026-11-21:3", "visit_kind": "field",
        "staff": "jonas", "place": "Customer site, Leeds", "purpose": "boiler maintenance",
        "outcome": "fixed", "duration_min": 90, "occurred_at": "2026-11-21T14:00:00+00:00"}),
    "record-web-form": (m.RecordWebForm, "Record a web-form submission", {
        "form_name": "contact", "submission_id": "sub-5521",
        "page_url": "https://www.example.org/contact", "email": "ada@example.com",
        "fields": {"message": "Please call me back", "topic": "sales"}}),
}


# Each business area keeps its command routes in ``channels/web/<area>_commands.py``
# (``COMMANDS`` and ``ROUTE_ROLES`` tables of the same shapes) and is added here.
#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    **_CORE_COMMANDS,
    **dispatch_commands.COMMANDS,
    **service_commands.COMMANDS,
    **work_commands.COMMANDS,
    **marketing_commands.COMMANDS,
    **accounts_commands.COMMANDS,
    **sales_commands.COMMANDS,
    **knowledge_commands.COMMANDS,
    **replies_commands.COMMANDS,
}
#: route name → roles admitted (admin is always admitted by ``authorize``)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    **_CORE_ROLES,
    **dispatch_commands.ROUTE_ROLES,
    **service_commands.ROUTE_ROLES,
    **work_commands.ROUTE_ROLES,
    **marketing_commands.ROUTE_ROLES,
    **accounts_commands.ROUTE_ROLES,
    **sales_commands.ROUTE_ROLES,
    **knowledge_commands.ROUTE_ROLES,
    **replies_commands.ROUTE_ROLES,
}

class RecordedPublic(BaseModel):
    """What a command recorded (the first call's result again for a duplicate)."""

    customer_id: str = Field(description="Empty when the touchpoint is held for triage.")
    event_ids: list[str]
    versions: list[int]
    positions: list[int | None]
    position: int | None = Field(description="Highest log position: pass it to read routes "
                                             "to read your own write.")
    duplicate: bool = Field(description="True when this source key was already recorded.")
    held_for_triage: bool = Field(default=False, description="Unknown sender, held for triage.")

    @classmethod
    def of(cls, r: Recorded) -> "RecordedPublic":
        return cls(customer_id=r.customer_id, event_ids=r.event_ids, versions=r.versions,
                   positions=r.positions, position=r.position, duplicate=r.duplicate,
                   held_for_triage=r.held_for_triage)


_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Duplicate (same source key: the first call's result again) or "
                         "nothing to change", "model": RecordedPublic},
    202: {"description": "Unknown sender: held for triage (not yet on a customer)",
          "model": RecordedPublic},
    400: {"description": "Malformed request"},
    401: {"description": "Missing, unknown or revoked API key"},
    403: {"description": "The key's role may not call this route"},
    404: {"description": "No such customer (void/correct: no such touchpoint on it)"},
    409: {"description": "Conflicts with what was recorded (or the Idempotency-Key was "
                         "used with another body)"},
    413: {"description": "Request body too large"},
    422: {"description": "Invalid input; the reason names the field"},
    503: {"description": "The customer kept changing; retry"},
}


def run_command(hub: Hub, cmd: m.Command) -> Recorded:
    """Execute ``cmd``, translating the write model's errors to ``HTTPException``."""
    try:
        return hub.execute(cmd)
    except (CustomerNotFoundError, TouchpointUnknownError, RecordNotFoundError) as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except (InvalidContactPointError, FutureOccurrenceError, InvalidInputError) as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    except ConcurrencyError as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "1"}) from exc
    except (ConflictError, DomainError) as exc:
        raise HTTPException(409, detail=str(exc)) from exc


def command_router(
    hub: HubProvider,
    authorize: Authorize,
    *,
    ledger: FingerprintLedger | None = None,
    roles: Mapping[str, tuple[str, ...]] = ROUTE_ROLES,
) -> APIRouter:
    """One POST ``/commands/<name>`` per command message."""
    router = APIRouter(prefix=PREFIX, tags=["commands"], responses=_ERRORS)
    for name, (model, summary, example) in COMMANDS.items():
        endpoint = _endpoint(name, model, example, hub, authorize(*roles[name]), ledger)
        router.add_api_route(
            f"/{name}", endpoint, methods=["POST"], summary=summary,
            description=model.__doc__ or summary, response_model=RecordedPublic,
            status_code=201, name=name, operation_id=name.replace("-", "_"),
        )
    return router


def _endpoint(
    name: str,
    model: type[m.Command],
    example: dict[str, Any],
    hub: HubProvider,
    who: Callable[..., PrincipalLike],
    ledger: FingerprintLedger | None,
) -> Callable[..., RecordedPublic]:
    # No ``from __future__ import annotations`` in this module: FastAPI reads
    # these annotations at runtime, and ``model`` differs per route.
    def endpoint(
        response: Response,
        body: Annotated[model, Body(openapi_examples={"example": {"value": example}})],  # type: ignore[valid-type]
        principal: Annotated[PrincipalLike, Depends(who)],
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=255,
            description="Retry key: the same key records nothing new.")] = None,
    ) -> RecordedPublic:
        cmd: m.Command = body
        if cmd.source_key is not None and cmd.source_key.startswith(RESERVED_KEY_PREFIXES):
            raise HTTPException(422, detail=(
                f"source_key may not start with {' or '.join(map(repr, RESERVED_KEY_PREFIXES))}: "
                "those namespaces are the hub's own (for a retry key, send Idempotency-Key)"))
        scope = body_hash = None
        if idempotency_key is not None:
            scope = f"{principal.key_id}:{name}:{idempotency_key}"
            body_hash = hashlib.sha256(cmd.model_dump_json().encode()).hexdigest()
            if ledger is not None and ledger.fingerprint(scope) not in (None, body_hash):
                raise HTTPException(409, detail="Idempotency-Key was already used with a "
                                                "different body on this route")
            if cmd.source_key is None and cmd.default_source_key() is None:
                cmd = cmd.model_copy(update={
                    "source_key": f"http:{principal.key_id}:{idempotency_key}"})
        if cmd.actor is None:
            cmd = cmd.model_copy(update={"actor": f"api:{principal.name}"})
        if getattr(principal, "role", None) == "partner":  # only its own customers
            cmd = cmd.for_partner(getattr(principal, "partner_id", None) or "")
        result = run_command(hub(), cmd)
        if ledger is not None and scope is not None and body_hash is not None:
            ledger.remember(scope, body_hash)
        if result.held_for_triage:
            response.status_code = 202
        elif result.duplicate or not result.event_ids:
            response.status_code = 200
        return RecordedPublic.of(result)

    endpoint.__name__ = name.replace("-", "_")
    return endpoint
