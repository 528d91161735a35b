"""Public web forms at ``/forms/<name>``: contact, quote request, service request, complaint,
feedback (configurable), as accessible HTML and as JSON.

Guards, cheapest first: a total body-size limit (413), a per-client rate
limit (429), the honeypot field, the signed render token (forged, expired or
submitted faster than a person could → refused), strict validation
(``extra="forbid"``; errors shown next to their fields; a NUL character in any
field is refused with 422 rather than stripped, so what is stored is what was
sent). The token's nonce is the submission id and so the source key: a double
submit records one event.

A submission from an unknown address creates a prospect; that prospect then
takes the submitted name (and company) and the submitted phone number as a
contact point. Only a prospect this very submission created is changed: a
public form must not rename a known customer or attach a number to them
(anyone can type someone else's address). A number that already belongs to
another customer stays in the submission's fields only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.concurrency import run_in_threadpool

from channels.bodies import form_pairs, media_type, read_capped
from channels.web.config import FieldSpec, FormsConfig, FormSpec
from channels.web.guards import RateLimiter, TokenError, check_token, issue_token
from channels.web.html import render_form, render_problem, render_thanks
from commands import messages as m
from commands.hub import Hub
from commands.identity import normalise_email, normalise_number
from commands.ports import Recorded
from domain.customer import Customer
from domain.errors import DomainError

HubProvider = Callable[[], Hub]


class SubmissionError(Exception):
    """Raised when a submission is refused; carries the HTTP status and what to show."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}


def _field_type(f: FieldSpec, region: str | None) -> Any:
    base: Any = Annotated[str, Field(min_length=1, max_length=f.max_length)]
    if f.kind == "email":
        base = Annotated[base, AfterValidator(_as_value_error(normalise_email))]
    elif f.kind == "tel":
        base = Annotated[base, AfterValidator(
            _as_value_error(lambda v: normalise_number(v, region)))]
    elif f.kind == "select":
        base = Annotated[base, AfterValidator(_choice(f.choices))]
    return base if f.required else base | None


def _as_value_error(normalise: Callable[[str], str]) -> Callable[[str], str]:
    """pydantic reports ValueErrors per field; the identity module raises domain errors."""
    def check(value: str) -> str:
        try:
            return normalise(value)
        except DomainError as exc:
            raise ValueError(str(exc)) from exc
    return check


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"choose one of: {', '.join(choices)}")
        return value
    return check


def submission_model(spec: FormSpec, region: str | None) -> type[BaseModel]:
    """A strict pydantic model of one form's fields (unknown fields refused)."""
    fields: dict[str, Any] = {
        f.name: (_field_type(f, region), ... if f.required else None) for f in spec.fields
    }
    return create_model(
        f"{spec.name.title().replace('-', '')}Submission",
        __config__=ConfigDict(extra="forbid", str_strip_whitespace=True),
        **fields,
    )


def _friendly(spec: FormSpec, err: Any) -> tuple[str, str]:
    name = str(err["loc"][0]) if err["loc"] else "form"
    labels = {f.name: f for f in spec.fields}
    f = labels.get(name)
    kind = err["type"]
    if kind == "extra_forbidden":
        return name, f"This form has no field called “{name}”."
    if f is None:
        return name, str(err["msg"])
    if kind in ("missing", "string_too_short"):
        if f.kind == "select":
            return name, f"Choose an answer for “{f.label}”."
        return name, f"Enter your {f.label.lower().removeprefix('your ')}."
    if kind == "string_too_long":
        return name, f"{f.label} must be at most {f.max_length} characters."
    if kind == "string_type":
        return name, f"{f.label} must be text."
    if f.kind == "email":
        return name, "Enter an email address like name@example.com."
    if f.kind == "tel":
        return name, "Enter a phone number like +44 20 7946 0018."
    return name, str(err["msg"]).removeprefix("Value error, ")


class FormsEndpoint:
    """The behaviour behind the routes, independent of the transport details."""

    def __init__(self, config: FormsConfig) -> None:
        self.config = config
        self.limiter = config.limiter or RateLimiter(config.rate_limit, config.rate_window_s,
                                                      config.clock)
        self.models = {name: submission_model(spec, config.default_region)
                       for name, spec in config.forms.items()}

    def spec(self, name: str) -> FormSpec:
        spec = self.config.forms.get(name)
        if spec is None:
            raise HTTPException(404, f"no form called {name!r}")
        return spec

    def client_key(self, request: Request) -> str:
        if self.config.trust_forwarded_for:
            forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
            if forwarded:
                return forwarded
        return request.client.host if request.client else "unknown"

    def token(self, name: str) -> str:
        return issue_token(self.config.secret, name, self.config.clock())

    def check(self, name: str, data: dict[str, Any]) -> tuple[str, m.RecordWebForm]:
        """Validate a submission; return its submission id and the command to run."""
        c = self.config
        if str(data.pop(c.honeypot, "") or "").strip():
            raise SubmissionError(400, "The submission was refused as automated.")
        try:
            raw_token = data.pop("_token", None)
            token = check_token(c.secret, raw_token if isinstance(raw_token, str) else None,
                                name, c.clock(),
                                min_age_s=c.min_fill_s, max_age_s=c.max_age_s)
        except TokenError as exc:
            raise SubmissionError(400, str(exc)) from exc
        spec = self.spec(name)
        labels = {f.name: f.label for f in spec.fields}
        for key, value in data.items():
            if isinstance(value, str) and "\x00" in value:
                raise SubmissionError(422, "Please correct the errors below.", {
                    key: f"{labels.get(key, key)} contains a NUL character, which is not "
                         "accepted."})
        required = {f.name for f in spec.fields if f.required}
        cleaned = {k: (None if v == "" and k not in required else v) for k, v in data.items()}
        try:
            valid = self.models[name].model_validate(cleaned)
        except ValidationError as exc:
            errors = dict(_friendly(spec, e) for e in exc.errors())
            raise SubmissionError(422, "Please correct the errors below.", errors) from exc
        values = {k: v for k, v in valid.model_dump().items() if v is not None}
        if not values.get("email") and not values.get("phone"):
            raise SubmissionError(422, "Please correct the errors below.", {
                "email": "Give an email address or a phone number so we can reply."})
        return token.nonce, m.RecordWebForm(
            form_name=name,
            submission_id=token.nonce,
            fields={k: str(v) for k, v in values.items()},
            email=values.get("email"),
            phone=values.get("phone"),
            actor="web-form",
        )


def record_submission(hub: Hub, cmd: m.RecordWebForm) -> Recorded:
    """Record a form submission (its email refused → 422) and complete the prospect it
    made; the self-service form records through this too."""
    try:
        result = hub.execute(cmd)
    except DomainError as exc:
        raise SubmissionError(422, "Please correct the errors below.",
                              {"email": str(exc)}) from exc
    # Also on a duplicate: a retry completes what a crash may have left half done.
    _complete_prospect(hub, cmd, result)
    return result


def _record(hub: Hub, cmd: m.RecordWebForm) -> bool:
    return not record_submission(hub, cmd).duplicate


def _complete_prospect(hub: Hub, cmd: m.RecordWebForm, result: Recorded) -> None:
    """Give a prospect this submission created its submitted name, company and phone.

    Each follow-up has its own source key derived from the submission's, so a
    retried submission records them once."""
    if not result.customer_id:
        return  # held for triage: no customer yet
    key = hub.source_key_of(cmd)
    customer_id = UUID(result.customer_id)
    first = next(iter(hub.events.get(hub.naming.customer(customer_id), limit=1)), None)
    if not isinstance(first, Customer.Registered) or first.causation_id != key:
        return  # a customer who existed before this submission
    changes = {f: cmd.fields[f] for f in ("name", "company") if cmd.fields.get(f)}
    if changes:
        hub.execute(m.ChangeProfile(customer_id=customer_id, changes=changes,
                                    source_key=f"{key}:profile", actor=cmd.actor,
                                    causation_id=key))
    if cmd.phone and cmd.counterpart() != ("phone", cmd.phone):
        try:
            hub.execute(m.AddContactPoint(
                customer_id=customer_id, contact=m.ContactPointIn(kind="phone", value=cmd.phone),
                source_key=f"{key}:phone", actor=cmd.actor, causation_id=key))
        except DomainError:
            pass  # the number belongs to another customer: it stays in the fields only


async def _payload(request: Request, limit: int) -> dict[str, Any]:
    body = await read_capped(request, limit)
    kind = media_type(request)
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise SubmissionError(400, "The body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise SubmissionError(400, "The JSON body must be an object.")
        return data
    if kind == "application/x-www-form-urlencoded":
        data = {}
        for key, value in form_pairs(body):
            if key in data:
                raise SubmissionError(422, "Please correct the errors below.",
                                      {key: "This field was sent more than once."})
            data[key] = value
        return data
    raise SubmissionError(415, "Send the form as application/x-www-form-urlencoded or JSON.")


_HTML = {"text/html": {"schema": {"type": "string"}}}
_ACCEPTED = {"type": "object", "required": ["status", "reference"], "properties": {
    "status": {"type": "string", "enum": ["recorded", "duplicate"]},
    "reference": {"type": "string"}}}
# JSON submissions get JSON answers (errors in the app's one error shape), others HTML.
_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Recorded", "content": {
        "application/json": {"schema": _ACCEPTED,
                             "example": {"status": "recorded", "reference": "n0nce"}},
        **_HTML}},
    200: {"description": "Already recorded (the same render token sent again)",
          "content": {"application/json": {"schema": _ACCEPTED}, **_HTML}},
    **{status: {"description": text, "content": dict(_HTML)} for status, text in (
        (400, "Automated, malformed, or the render token is missing, forged or expired"),
        (404, "No such form"),
        (413, "Body over the form's size limit"),
        (415, "Not form-encoded and not JSON"),
        (422, "Invalid fields; `errors` names them"),
        (429, "Too many submissions from this client; see Retry-After"))},
}


def forms_router(get_hub: HubProvider, config: FormsConfig) -> APIRouter:
    """``GET``/``POST /forms/{name}``: public, no API key; abuse guarded as described above."""
    router = APIRouter(prefix="/forms", tags=["public forms"])
    endpoint = FormsEndpoint(config)

    @router.get("/{name}", response_class=HTMLResponse, summary="Render a public form",
                responses={404: {"description": "No such form"}})
    def show(name: str) -> HTMLResponse:
        spec = endpoint.spec(name)
        return HTMLResponse(render_form(spec, f"/forms/{name}", endpoint.token(name),
                                        config.honeypot),
                            headers={"Cache-Control": "no-store"})

    @router.post("/{name}", summary="Submit a public form (form-encoded or JSON)",
                 status_code=201, responses=_SUBMIT_RESPONSES)
    async def submit(
        name: str, request: Request, hub: Hub = Depends(get_hub)  # noqa: B008 - FastAPI idiom
    ) -> Response:
        spec = endpoint.spec(name)
        wants_json = media_type(request) == "application/json"
        data: dict[str, Any] = {}
        try:
            wait = endpoint.limiter.hit(endpoint.client_key(request))
            if wait is not None:
                raise SubmissionError(429, "Too many submissions; please try again shortly.",
                                      headers={"Retry-After": str(int(wait) + 1)})
            data = await _payload(request, config.max_body_bytes)
            reference, cmd = endpoint.check(name, dict(data))
            referer = request.headers.get("referer")
            cmd = cmd.model_copy(update={"page_url": referer[:2000] if referer else None})
            recorded = await run_in_threadpool(_record, hub, cmd)
        except (SubmissionError, HTTPException) as exc:
            refusal = exc if isinstance(exc, SubmissionError) else SubmissionError(
                exc.status_code, str(exc.detail))
            values = {k: v for k, v in data.items() if isinstance(v, str)}
            return _refusal(spec, name, endpoint, refusal, wants_json, values)
        status = "recorded" if recorded else "duplicate"
        code = 201 if recorded else 200
        if wants_json:
            return JSONResponse({"status": status, "reference": reference}, status_code=code)
        return HTMLResponse(render_thanks(spec, reference), status_code=code)

    return router


def _refusal(spec: FormSpec, name: str, endpoint: FormsEndpoint, exc: SubmissionError,
             wants_json: bool, values: dict[str, str]) -> Response:
    if wants_json:
        # Rendered by the app's one error handler, like every other error answer.
        raise HTTPException(exc.status, detail={"reason": exc.message, "errors": exc.errors},
                            headers=exc.headers or None)
    if exc.status in (400, 422):
        # Re-render with what they typed, the messages and a fresh token.
        values.pop(endpoint.config.honeypot, None)
        values.pop("_token", None)
        html = render_form(spec, f"/forms/{name}", endpoint.token(name),
                           endpoint.config.honeypot, values, exc.errors, exc.message)
        return HTMLResponse(html, status_code=exc.status, headers=exc.headers)
    return HTMLResponse(render_problem(spec.title, exc.message), status_code=exc.status,
                        headers=exc.headers)
