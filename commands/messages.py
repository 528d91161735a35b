"""Command messages: strict pydantic models (unknown fields are rejected).

Every command carries a ``source_key`` — the id the source gave the
touchpoint (Message-ID, CallSid, submission id…). Delivering the same command
twice with the same source key records one event and returns the first
result. When a source has no id of its own the key is derived from the
fields that identify the touchpoint (see ``default_source_key``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

Direction = Literal["inbound", "outbound"]
LifecycleStage = Literal["prospect", "target", "current", "lost"]
ContactKind = Literal["email", "phone", "fax"]


# RFC 3339 ``date-time``: full date, time, optional fraction, and an offset (Z or ±hh:mm).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_DATE_HELP = ("an RFC 3339 date-time with a timezone offset (Z or ±hh:mm), "
              "e.g. 2026-11-24T09:30:00+01:00")


def strict_datetime(value: object) -> datetime:
    """An aware ``datetime`` as is, or an RFC 3339 string with an offset; nothing else.

    pydantic's lax mode would read ``0`` or ``"1700000000"`` as an epoch: a
    number is far more often a mistake than a date, so it is refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamps must carry a timezone: {_DATE_HELP}")
        return _in_range(value)
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"expected {_DATE_HELP}")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    if "." in text:  # Python reads at most microseconds: drop finer digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{tail[digits.end():]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a real date or time: {value!r}") from exc
    return _in_range(parsed)


def _in_range(value: datetime) -> datetime:
    """Years 1900–9998 in UTC: earlier or later is a typo, and the read models' integer
    times must convert back to a ``datetime`` whatever the offset."""
    if not _EARLIEST <= value < _LATEST:
        raise ValueError(f"{value.isoformat()} is outside 1900-01-01 … 9998-12-31 (UTC)")
    return value


AwareDatetime = Annotated[datetime, BeforeValidator(strict_datetime)]
Short = Annotated[str, Field(min_length=1, max_length=500)]
Key = Annotated[str, Field(min_length=1, max_length=1000)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Command(BaseModel):
    """Fields every command shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    source_key: Key | None = Field(
        default=None,
        description="Id the source gave this item; retries with the same key record nothing new.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened at the source; defaults to now."
    )
    actor: Short | None = Field(default=None, description="Staff user or adapter name.")
    correlation_id: Short | None = None
    causation_id: Short | None = None

    kind: str = ""  # set by subclasses; used in derived keys and event ids
    # Set by the route for a partner key (never from the body): the command may then
    # touch only customers assigned to that partner (``commands.handling.on_customer``).
    _partner_scope: str | None = PrivateAttr(default=None)

    @property
    def partner_scope(self) -> str | None:
        """The partner this command acts for (None: staff or an adapter)."""
        # Read from pydantic's private dict itself: ``self._partner_scope`` goes through
        # ``BaseModel.__getattr__`` (~7 us, a twentieth of a command's Python).
        private = self.__pydantic_private__
        return private.get("_partner_scope") if private else None

    def for_partner(self, partner_id: str) -> Command:
        """This command on behalf of ``partner_id``: customers of other partners are unknown."""
        scoped = self.model_copy()
        scoped._partner_scope = partner_id
        return scoped

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """Refuse NUL characters anywhere in the input (PostgreSQL text cannot hold them,
        and silently dropping them would change source keys and ids)."""
        where = nul_path(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'} contains a NUL character (U+0000)")
        return data

    def default_source_key(self) -> str | None:
        """The key derived from the touchpoint's own id, when it has one."""
        return None


def nul_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` (nested dicts, lists, keys too) a NUL character is, else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return here
            if (found := nul_path(item, here)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if (found := nul_path(item, f"{path}[{i}]")) is not None:
                return found
    return None


class CustomerTarget(Command):
    """A command about a customer found by id or by a contact point."""

    customer_id: UUID | None = Field(default=None, description="The customer's id, if known.")


class ContactPointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ContactKind
    value: Short
    label: Annotated[str, Field(max_length=100)] | None = None


class RegisterCustomer(Command):
    kind: Literal["register"] = "register"
    customer_id: UUID | None = None
    name: Short
    company: Short | None = None
    lifecycle_stage: LifecycleStage = "prospect"
    contact_points: Annotated[list[ContactPointIn], Field(max_length=50)] = []

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Ada Lovelace",
                    "company": "Analytical Engines Ltd",
                    "contact_points": [
                        {"kind": "email", "value": "ada@example.com"},
                        {"kind": "phone", "value": "+44 20 7946 0018"},
                    ],
                    "source_key": "crm-import:42",
                }
            ]
        }
    )


class ChangeProfile(CustomerTarget):
    kind: Literal["profile"] = "profile"
    changes: Annotated[dict[str, Annotated[str, Field(max_length=2000)] | None], Field(max_length=50)]


class AddContactPoint(CustomerTarget):
    kind: Literal["add-contact"] = "add-contact"
    contact: ContactPointIn


class RemoveContactPoint(CustomerTarget):
    kind: Literal["remove-contact"] = "remove-contact"
    contact: ContactPointIn
    reason: Short | None = None


class ChangeLifecycleStage(CustomerTarget):
    kind: Literal["lifecycle"] = "lifecycle"
    to_stage: LifecycleStage
    reason: Short | None = None


class AddNote(CustomerTarget):
    kind: Literal["note"] = "note"
    text: Annotated[str, Field(min_length=1, max_length=20000)]
    visibility: Literal["internal", "shared"] = "internal"


class AssignPartner(CustomerTarget):
    kind: Literal["partner"] = "partner"
    partner_id: Short | None


class MergeCustomers(Command):
    kind: Literal["merge"] = "merge"
    source_id: UUID = Field(description="The duplicate; its history joins the target's.")
    target_id: UUID = Field(description="The surviving customer.")

    def default_source_key(self) -> str:
        return f"merge:{self.source_id}:{self.target_id}"


class UnmergeCustomer(Command):
    kind: Literal["unmerge"] = "unmerge"
    source_id: UUID = Field(description="The customer that was merged into another.")


# -- corrections -----------------------------------------------------------


class VoidTouchpoint(Command):
    """Void a touchpoint recorded by mistake; it stays in the log, shown as voided, and
    no longer counts (touches, last contact)."""

    kind: Literal["void-touchpoint"] = "void-touchpoint"
    customer_id: UUID = Field(description="The customer whose timeline shows the touchpoint.")
    event_id: UUID = Field(description="The touchpoint's event id (from the timeline).")
    reason: Short

    def default_source_key(self) -> str:
        return f"void-touchpoint:{self.event_id}"


class CorrectTouchpoint(Command):
    """Correct when a touchpoint happened and/or its descriptive text fields (agent, queue,
    summary, subject, staff, place, purpose, notes); the original stays in the log."""

    kind: Literal["correct-touchpoint"] = "correct-touchpoint"
    customer_id: UUID = Field(description="The customer whose timeline shows the touchpoint.")
    event_id: UUID = Field(description="The touchpoint's event id (from the timeline).")
    corrected_occurred_at: AwareDatetime | None = Field(
        default=None, description="When it really happened.")
    changes: Annotated[
        dict[str, Annotated[str, Field(max_length=5000)] | None], Field(max_length=20)
    ] = {}
    reason: Short


# -- touchpoints ---------------------------------------------------------


class Touchpoint(CustomerTarget):
    """A touchpoint: found by customer id, or by the counterpart's contact point."""

    direction: Direction = "inbound"
    channel: str = ""

    def counterpart(self) -> tuple[str, str] | None:
        """The customer's contact point (kind, raw value) seen on this touchpoint."""
        return None


CallOutcome = Literal["answered", "missed", "abandoned", "voicemail", "busy", "failed"]


class LogCall(Touchpoint):
    kind: Literal["call"] = "call"
    channel: Literal["phone"] = "phone"
    call_id: Short
    from_number: Short | None = None
    to_number: Short | None = None
    queue: Short | None = None
    agent: Short | None = None
    ivr_choices: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = []
    outcome: CallOutcome = "answered"
    duration_s: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None
    wait_s: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None
    recording_ref: Short | None = None
    summary: Annotated[str, Field(max_length=5000)] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call_id": "CA1234",
                    "direction": "inbound",
                    "from_number": "+44 20 7946 0018",
                    "to_number": "+44 20 7946 0000",
                    "queue": "support",
                    "agent": "mia",
                    "ivr_choices": ["2", "1"],
                    "outcome": "answered",
                    "duration_s": 312,
                    "wait_s": 41,
                    "occurred_at": "2026-11-24T09:30:00+00:00",
                }
            ]
        }
    )

    def default_source_key(self) -> str:
        return f"call:{self.call_id}"

    def counterpart(self) -> tuple[str, str] | None:
        number = self.from_number if self.direction == "inbound" else self.to_number
        return ("phone", number) if number else None


class RecordCallStep(Touchpoint):
    kind: Literal["call-step"] = "call-step"
    channel: Literal["phone"] = "phone"
    call_id: Short
    step: Literal[
        "offered", "queued", "ringing", "answered", "transferred", "ended",
        "missed", "abandoned", "voicemail", "recording-available", "busy", "failed",
    ]
    sequence: Annotated[int, Field(ge=0)] = 0
    from_number: Short | None = None
    to_number: Short | None = None
    queue: Short | None = None
    agent: Short | None = None
    details: Annotated[dict[str, Annotated[str, Field(max_length=2000)]], Field(max_length=50)] = {}

    def default_source_key(self) -> str:
        return f"call-step:{self.call_id}:{self.step}:{self.sequence}"

    def counterpart(self) -> tuple[str, str] | None:
        number = self.from_number if self.direction == "inbound" else self.to_number
        return ("phone", number) if number else None


class RequestCallback(Touchpoint):
    kind: Literal["callback-requested"] = "callback-requested"
    channel: Literal["phone", "web"] = "phone"
    callback_id: Short
    number: Short | None = None
    requested_for: AwareDatetime | None = None
    reason: Short | None = None

    def default_source_key(self) -> str:
        return f"callback:{self.callback_id}"

    def counterpart(self) -> tuple[str, str] | None:
        return ("phone", self.number) if self.number else None


class CompleteCallback(Touchpoint):
    kind: Literal["callback-completed"] = "callback-completed"
    channel: Literal["phone"] = "phone"
    direction: Direction = "outbound"
    callback_id: Short
    outcome: Literal["reached", "no-answer", "voicemail", "cancelled"] = "reached"
    call_id: Short | None = None

    def default_source_key(self) -> str:
        return f"callback-done:{self.callback_id}"


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]
    content_type: Short
    filename: Annotated[str, Field(max_length=500)] | None = None


class RecordEmail(Touchpoint):
    kind: Literal["email"] = "email"
    channel: Literal["email"] = "email"
    message_id: Short
    thread_id: Short | None = None
    in_reply_to: Short | None = None
    references: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=200)] = []
    from_address: Short
    to: Annotated[list[Short], Field(max_length=200)] = []
    cc: Annotated[list[Short], Field(max_length=200)] = []
    subject: Annotated[str, Field(max_length=2000)] = ""
    body_text: Annotated[str, Field(max_length=64_000)] | None = Field(
        default=None, description="Plain text up to 64 kB; larger bodies go to a blob (body_ref)."
    )
    body_ref: Short | None = Field(default=None, description="sha256 of the body blob.")
    attachments: Annotated[list[Attachment], Field(max_length=200)] = []
    raw_ref: Sha256 | None = Field(default=None, description="sha256 of the raw message blob.")
    email: Short | None = Field(
        default=None,
        description="The customer's address when it is not the sender (inbound) or the "
        "first recipient (outbound); only used to find the customer.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message_id": "<abc@mail.example.com>",
                    "direction": "inbound",
                    "from_address": "ada@example.com",
                    "to": ["support@company.example"],
                    "subject": "Invoice question",
                    "body_text": "Hello, ...",
                }
            ]
        }
    )

    def default_source_key(self) -> str:
        return f"email:{self.message_id}"

    def counterpart(self) -> tuple[str, str] | None:
        if self.email:
            return ("email", self.email)
        if self.direction == "inbound":
            return ("email", self.from_address)
        return ("email", self.to[0]) if self.to else None


class RecordFax(Touchpoint):
    kind: Literal["fax"] = "fax"
    channel: Literal["fax"] = "fax"
    fax_id: Short
    from_number: Short | None = None
    to_number: Short | None = None
    pages: Annotated[int, Field(ge=0, le=10_000)] | None = None
    document_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    document_size: Annotated[int, Field(ge=0)] | None = None
    content_type: Short | None = None
    status: Literal["complete", "partial", "failed", "queued"] = "complete"

    def default_source_key(self) -> str:
        return f"fax:{self.fax_id}"

    def counterpart(self) -> tuple[str, str] | None:
        number = self.from_number if self.direction == "inbound" else self.to_number
        return ("fax", number) if number else None


class RecordVisit(Touchpoint):
    kind: Literal["visit"] = "visit"
    channel: Literal["visit"] = "visit"
    direction: Direction = "outbound"
    visit_id: Short = Field(description="Id given by the device or person that logged it.")
    visit_kind: Literal["office", "field"]
    staff: Short
    place: Short | None = None
    purpose: Short | None = None
    outcome: Short | None = None
    notes: Annotated[str, Field(max_length=20000)] | None = None
    duration_min: Annotated[int, Field(ge=0, le=24 * 60)] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11",
                    "visit_id": "tablet-7:2026-11-21:3",
                    "visit_kind": "field",
                    "staff": "jonas",
                    "place": "Customer site, Leeds",
                    "purpose": "boiler maintenance",
                    "outcome": "fixed",
                    "occurred_at": "2026-11-21T14:00:00+00:00",
                }
            ]
        }
    )

    def default_source_key(self) -> str:
        return f"visit:{self.visit_id}"


class RecordWebForm(Touchpoint):
    kind: Literal["web-form"] = "web-form"
    channel: Literal["web"] = "web"
    form_name: Short
    submission_id: Short
    page_url: Annotated[str, Field(max_length=2000)] | None = None
    fields: Annotated[dict[str, Annotated[str, Field(max_length=10000)]], Field(max_length=100)]
    email: Short | None = Field(default=None, description="Submitter's email, used to find them.")
    phone: Short | None = None

    def default_source_key(self) -> str:
        return f"web-form:{self.form_name}:{self.submission_id}"

    def counterpart(self) -> tuple[str, str] | None:
        if self.email:
            return ("email", self.email)
        return ("phone", self.phone) if self.phone else None


TOUCHPOINT_COMMANDS: dict[str, type[Touchpoint]] = {
    "call": LogCall,
    "call-step": RecordCallStep,
    "callback-requested": RequestCallback,
    "callback-completed": CompleteCallback,
    "email": RecordEmail,
    "fax": RecordFax,
    "visit": RecordVisit,
    "web-form": RecordWebForm,
}


def touch_fields(command: Touchpoint, exclude: set[str]) -> dict[str, Any]:
    """The command's own fields, minus the shared ones, for the event."""
    shared = set(Touchpoint.model_fields)
    data = command.model_dump(exclude=shared | exclude)
    return data
