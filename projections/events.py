"""Event facts every read model needs: ids, times as integers, kinds, texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.customer import Customer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
CUSTOMER_TOPIC_PREFIX = get_topic(Customer) + "."
SUMMARY_CHARS = 240

Item = tuple[int, Customer.Event]
"""(position in the event log, decoded event)."""


def us(moment: datetime) -> int:
    """Microseconds since the epoch: exact, sortable, the same in SQLite and PostgreSQL."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _US


def iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def customer_id(event: Customer.Event) -> str:
    """The customer's UUID as text, whatever the store named the stream."""
    oid = event.originator_id
    if isinstance(oid, UUID):
        return str(oid)
    return str(UUID(str(oid).removeprefix("customer-")))


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_KIND_NAMES: dict[type, str] = {}
# Short names for the touchpoints people filter on; others are snake_case of the class.
_SHORT = {
    "CallLogged": "call",
    "CallStepRecorded": "call_step",
    "EmailRecorded": "email",
    "FaxRecorded": "fax",
    "VisitRecorded": "visit",
    "WebFormSubmitted": "web_form",
    "NoteAdded": "note",
}


def kind_of(event: Customer.Event) -> str:
    cls = type(event)
    name = _KIND_NAMES.get(cls)
    if name is None:
        short = cls.__name__
        name = _KIND_NAMES[cls] = _SHORT.get(short) or _CAMEL.sub("_", short).lower()
    return name


def is_internal(event: Customer.Event) -> bool:
    """Staff-only content: internal notes (partners never see them)."""
    return isinstance(event, Customer.NoteAdded) and event.visibility == "internal"


def _clip(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def subject_of(event: Customer.Event) -> str | None:
    """The one-line title shown in a timeline page."""
    e: Any = event
    if isinstance(event, Customer.Registered):
        return _clip(e.name)
    for attr in ("subject", "purpose", "form_name", "reason", "to_stage"):
        value = getattr(e, attr, None)
        if isinstance(value, str) and value.strip():
            return _clip(value)
    if isinstance(event, Customer.ContactPointAdded | Customer.ContactPointRemoved):
        return _clip(f"{e.kind} {e.value}")
    return None


def summary_of(event: Customer.Event) -> str | None:
    """A short text for the page and for search; the full body is fetched on demand."""
    e: Any = event
    for attr in ("summary", "text", "body_text", "notes", "outcome", "diagnostic", "status"):
        value = getattr(e, attr, None)
        if isinstance(value, str) and value.strip():
            return _clip(value)
    fields = getattr(e, "fields", None)
    if isinstance(fields, dict) and fields:
        return _clip("; ".join(f"{k}: {v}" for k, v in sorted(fields.items())))
    changes = getattr(e, "changes", None)
    if isinstance(changes, dict) and changes:
        return _clip("; ".join(f"{k}: {v}" for k, v in sorted(changes.items())))
    return None


def has_body(event: Customer.Event) -> bool:
    e: Any = event
    return bool(getattr(e, "body_text", None) or getattr(e, "body_ref", None))


def payload(event: Customer.Event) -> dict[str, Any]:
    """Every field of the event, JSON-ready (for the on-demand detail)."""
    out: dict[str, Any] = {}
    for key, value in event.__dict__.items():
        if key in ("originator_id", "originator_version", "timestamp"):
            continue
        out[key] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value
