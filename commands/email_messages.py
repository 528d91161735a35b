"""The email channel's own commands: outbound intents and outcomes, bounces, mailbox operations.

Kept apart from ``commands.messages`` (the public command set every API route
exposes): these are recorded by the email adapters themselves.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from commands.messages import Command, Key, Sha256, Short, Touchpoint


class SendEmail(Touchpoint):
    """Queue an email to a customer: the intent is recorded first, with a Message-ID
    derived from the source key, and a sender process delivers it."""

    kind: Literal["send-email"] = "send-email"
    channel: Literal["email"] = "email"
    direction: Literal["outbound"] = "outbound"
    source_key: Key = Field(description="Makes the send idempotent and fixes its Message-ID.")
    from_address: Short
    to: Annotated[list[Short], Field(min_length=1, max_length=50)]
    cc: Annotated[list[Short], Field(max_length=50)] = []
    subject: Annotated[str, Field(max_length=2000)] = ""
    body_text: Annotated[str, Field(max_length=64_000)] = ""
    in_reply_to: Short | None = Field(default=None, description="Message-ID being answered.")
    references: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=200)] = []
    template_id: UUID | None = Field(default=None, description=(
        "Render this message template (commands.replies) against the customer's data; "
        "``subject`` (when given) overrides the template's. Needs ``customer_id``."))
    variables: Annotated[dict[Annotated[str, Field(max_length=100)],
                              Annotated[str, Field(max_length=5000)]], Field(max_length=50)] = {}
    language: Annotated[str, Field(max_length=20)] | None = Field(
        default=None, description="Template language; default: the customer's, then the "
        "template's fallback.")
    case_id: UUID | None = Field(default=None, description="The case the template may name.")

    @model_validator(mode="after")
    def _body_or_template(self) -> SendEmail:
        if self.template_id is None and not self.body_text:
            raise ValueError("give body_text, or a template_id to render it from")
        if self.template_id is None and (self.variables or self.language or self.case_id):
            raise ValueError("variables, language and case_id go with a template_id")
        return self

    def counterpart(self) -> tuple[str, str] | None:
        return ("email", self.to[0])


class _Delivery(Touchpoint):
    """What happened to a queued email; found by the customer's id."""

    channel: Literal["email"] = "email"
    direction: Literal["outbound"] = "outbound"
    customer_id: UUID
    message_id: Short
    attempt: Annotated[int, Field(ge=1, le=1000)]


class RecordEmailSent(_Delivery):
    kind: Literal["email-sent"] = "email-sent"
    response: Annotated[str, Field(max_length=2000)] = ""

    def default_source_key(self) -> str:
        return f"email-sent:{self.message_id}"


class RecordEmailSendFailed(_Delivery):
    kind: Literal["email-failed"] = "email-failed"
    reason: Annotated[str, Field(max_length=2000)]
    permanent: bool = True

    def default_source_key(self) -> str:
        return f"email-failed:{self.message_id}"


class RecordEmailOutcomeUnknown(_Delivery):
    kind: Literal["email-unknown"] = "email-unknown"
    reason: Annotated[str, Field(max_length=2000)]

    def default_source_key(self) -> str:
        return f"email-unknown:{self.message_id}:{self.attempt}"


class RecordEmailBounce(Touchpoint):
    """A delivery status notification about an outbound email."""

    kind: Literal["email-bounce"] = "email-bounce"
    channel: Literal["email"] = "email"
    original_message_id: Short
    recipient: Short | None = None
    action: Annotated[str, Field(max_length=100)] = "failed"
    status: Annotated[str, Field(max_length=100)] | None = None
    diagnostic: Annotated[str, Field(max_length=2000)] | None = None
    report_message_id: Short
    raw_ref: Sha256 | None = None

    def default_source_key(self) -> str:
        return f"email-bounce:{self.report_message_id}"

    def counterpart(self) -> tuple[str, str] | None:
        return ("email", self.recipient) if self.recipient else None


class QuarantineEmail(Command):
    """Keep aside a message that cannot become a touchpoint, with its reason."""

    kind: Literal["email-quarantine"] = "email-quarantine"
    source_key: Key
    account: Short
    folder: Short
    reason: Literal[
        "unparseable", "too-deep", "oversized", "no-customer", "invalid", "held-for-triage",
        "unmatched",
    ] = Field(description="``unmatched``: a delivery report about mail this hub never sent.")
    detail: Annotated[str, Field(max_length=2000)] = ""
    message_id: Annotated[str, Field(max_length=1000)] | None = None
    uidvalidity: Annotated[int, Field(ge=0)] | None = None
    uid: Annotated[int, Field(ge=0)] | None = None
    size: Annotated[int, Field(ge=0)]
    raw_ref: Sha256 | None = None
    header_ref: Sha256 | None = None


class NoteUidValidityChange(Command):
    """A mailbox folder's UIDVALIDITY changed: cached UIDs are void and a rescan follows."""

    kind: Literal["uidvalidity"] = "uidvalidity"
    account: Short
    folder: Short
    old_uidvalidity: Annotated[int, Field(ge=0)]
    new_uidvalidity: Annotated[int, Field(ge=0)]

    def default_source_key(self) -> str:
        return (
            f"uidvalidity:{self.account}:{self.folder}:"
            f"{self.old_uidvalidity}:{self.new_uidvalidity}"
        )


#: The email channel's touchpoint commands by kind (a held one is assigned by kind).
EMAIL_TOUCHPOINTS: dict[str, type[Touchpoint]] = {
    "send-email": SendEmail,
    "email-sent": RecordEmailSent,
    "email-failed": RecordEmailSendFailed,
    "email-unknown": RecordEmailOutcomeUnknown,
    "email-bounce": RecordEmailBounce,
}
