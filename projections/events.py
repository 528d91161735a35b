"""Event facts every read model needs: ids, times as integers, kinds, texts."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic, resolve_topic

from domain.catalog import customer_event_classes
from domain.customer import Customer
from domain.personal import personal_fields

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
CUSTOMER_TOPIC_PREFIX = get_topic(Customer) + "."
SUMMARY_CHARS = 240

Item = tuple[int, Customer.Event]
"""(position in the event log, decoded event)."""


def us(moment: datetime) -> int:
    """Microseconds since the epoch: exact, sortable, the same in SQLite and PostgreSQL."""
    # Every read model of a process converts the same event's times (a rebuild feeds one
    # decoded event to all of them): remembered by the datetime object, whose hash is
    # kept in it, so a repeat is one dict lookup (``is`` before ``==``).
    found = _US_SEEN.get(moment)
    if found is None:
        if len(_US_SEEN) >= _SEEN_SIZE:
            _US_SEEN.clear()
        found = _US_SEEN[moment] = (
            (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)) - EPOCH
        ) // _US
    return found


def event_id_text(event: Customer.Event) -> str:
    """``str(event.event_id)``, remembered by the UUID's int for the other read models
    of this process (formatting a UUID is Python code, ~0.7 µs; ~8 models ask)."""
    eid = event.event_id
    key = getattr(eid, "int", eid)
    text = _ID_SEEN.get(key)
    if text is None:
        if len(_ID_SEEN) >= _SEEN_SIZE:
            _ID_SEEN.clear()
        text = _ID_SEEN[key] = str(eid)
    return text


_SEEN_SIZE = 65536
_US_SEEN: dict[datetime, int] = {}
_ID_SEEN: dict[int | str, str] = {}


def moment(micros: int) -> datetime:
    # ``_US * micros`` (exact integer arithmetic) is ~2x faster than building
    # ``timedelta(microseconds=...)`` from keywords: every page entry has two.
    return EPOCH + _US * micros


def iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return (EPOCH + _US * micros).isoformat()


@lru_cache(maxsize=1024)
def is_customer_topic(topic: str) -> bool:
    """True for the topic of any event of a customer's stream (core or business area).

    A topic under ``Customer`` counts even when it no longer resolves, so a
    vanished class surfaces as a damaged event rather than being skipped."""
    if topic.startswith(CUSTOMER_TOPIC_PREFIX):
        return True
    return issubclass(event_class(topic), Customer.Event)


@lru_cache(maxsize=1024)
def event_class(topic: str) -> type:
    """The class a stored topic names (``object`` when it resolves to none)."""
    try:
        found = resolve_topic(topic)
    except Exception:  # noqa: BLE001 -- any unresolvable topic is simply not one of ours
        return object
    return found if isinstance(found, type) else object


def customer_id(event: Customer.Event) -> str:
    """The customer's UUID as text, whatever the store named the stream."""
    oid = event.originator_id
    # Keyed by the UUID's int: hashing a UUID (and comparing on a collision) are
    # Python-level calls, and this runs for every event in every read model (~8% of
    # a rebuild's CPU when it was an lru_cache over the UUID itself).
    key = getattr(oid, "int", oid)
    text = _CUSTOMER_TEXT.get(key)
    if text is None:
        if len(_CUSTOMER_TEXT) >= _CUSTOMER_CACHE_SIZE:
            _CUSTOMER_TEXT.clear()
        text = _CUSTOMER_TEXT[key] = _customer_text(oid)
    return text


_CUSTOMER_CACHE_SIZE = 65536
_CUSTOMER_TEXT: dict[int | str, str] = {}


def _customer_text(oid: UUID | str) -> str:
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
    return kind_name(type(event))


def kind_name(cls: type) -> str:
    """The timeline ``kind`` of an event class."""
    name = _KIND_NAMES.get(cls)
    if name is None:
        short = cls.__name__
        name = _KIND_NAMES[cls] = _SHORT.get(short) or _CAMEL.sub("_", short).lower()
    return name


def all_kinds() -> tuple[str, ...]:
    """Every kind a timeline entry can have (one per customer event class), sorted."""
    return tuple(sorted({kind_name(cls) for cls in customer_event_classes()}))


def is_internal(event: Customer.Event) -> bool:
    """Staff-only content: internal notes (partners never see them)."""
    return isinstance(event, Customer.NoteAdded) and event.visibility == "internal"


def _clip(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


#: Business objects by their id field, first match names a business event's subject
#: (a quote names its opportunity too, a work order its case: the more specific first).
_OBJECT_IDS = (
    ("order_number", "order"), ("quote_id", "quote"), ("work_order_id", "work order"),
    ("case_id", "case"), ("opportunity_id", "opportunity"), ("contract_id", "contract"),
    ("product_code", "product"), ("product_id", "product"), ("account_id", "account"),
    ("task_id", "task"), ("item_id", "work item"),
    ("template_id", "template"), ("material_id", "material"),
)
#: Clear (non-personal) state fields a business event's summary line lists when it has
#: no text or amount of its own: "priority: high", "queue: billing; agent: mia".
_FACTS = (
    "stage", "to_stage", "probability", "priority", "queue", "agent", "resolution_code",
    "accepted", "score", "technician_id", "window_start", "window_end", "eta",
    "follow_up_on", "follow_up_channel", "starts_on", "ends_on", "installed_on", "role",
    "touchpoint_channel", "minutes_spent", "assignee", "due_at", "to_agent", "rule",
)


def subject_of(event: Customer.Event) -> str | None:
    """The one-line title shown in a timeline page."""
    e: Any = event
    if isinstance(event, Customer.Registered):
        return _clip(e.name)
    cls = type(event)
    has, attrs, _, _, _ = _plan(cls)
    consent = getattr(e, "consent_channel", None) if "consent_channel" in has else None
    if isinstance(consent, str) and consent:  # marketing: what was consented to
        purpose = getattr(e, "purpose", None)
        return _clip(f"{consent} consent: {purpose}" if purpose else f"{consent} consent")
    if "campaign_id" in has and getattr(e, "campaign_id", None) and getattr(e, "message_id", None):
        return _clip(f"campaign email: {getattr(e, 'purpose', None) or e.campaign_id}")
    for attr in attrs:
        value = getattr(e, attr, None)
        if isinstance(value, str) and value.strip():
            return _clip(value)
    if isinstance(event, Customer.ContactPointAdded | Customer.ContactPointRemoved):
        return _clip(f"{e.kind} {e.value}")
    for attr, label in _OBJECT_IDS:  # business areas: the object the event is about
        if attr not in has:
            continue
        value = getattr(e, attr, None)
        if isinstance(value, str) and value:
            return _clip(f"{label} {value}")
    return None


_SUBJECT_ATTRS = ("subject", "title", "purpose", "form_name", "reason", "to_stage")
_SUMMARY_ATTRS = ("summary", "text", "body_text", "notes", "outcome", "diagnostic", "status")
_SUBJECT_PROBES = ("consent_channel", "campaign_id", *(attr for attr, _ in _OBJECT_IDS))
_SUMMARY_PROBES = ("fields", "changes", "amount", "total", *_FACTS)


@lru_cache(maxsize=4096)
def _present(cls: type, names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``names`` an instance of ``cls`` can have, in order: every one for a class
    that is not a dataclass (a correction's stand-in). ``getattr`` on the absent ones was
    a third of the timeline's row building."""
    if not dataclasses.is_dataclass(cls):
        return names
    fields = {f.name for f in dataclasses.fields(cls)}
    return tuple(n for n in names if n in fields or hasattr(cls, n))


Plan = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_PLANS: dict[type, Plan] = {}


def _plan(cls: type) -> Plan:
    """``_present`` of the subject and summary probes of ``cls``, all five at once: one
    dict lookup per event (``_present``'s cache hashed its tuple of names on every call,
    four calls per timeline row)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = (
            _present(cls, _SUBJECT_PROBES), _present(cls, _SUBJECT_ATTRS),
            _present(cls, _SUMMARY_ATTRS), _present(cls, _SUMMARY_PROBES),
            _present(cls, _FACTS))
    return plan


def summary_of(event: Customer.Event) -> str | None:
    """A short text for the page and for search; the full body is fetched on demand."""
    e: Any = event
    _, _, attrs, has, facts_of = _plan(type(event))
    for attr in attrs:
        value = getattr(e, attr, None)
        if isinstance(value, str) and value.strip():
            return _clip(value)
    if not has:
        return None
    fields = getattr(e, "fields", None)
    if isinstance(fields, dict) and fields:
        return _clip("; ".join(f"{k}: {v}" for k, v in sorted(fields.items())))
    changes = getattr(e, "changes", None)
    if isinstance(changes, dict) and changes:
        return _clip("; ".join(f"{k}: {v}" for k, v in sorted(changes.items())))
    amount = getattr(e, "amount", None) or getattr(e, "total", None)  # sales: money moved
    if isinstance(amount, str) and isinstance(getattr(e, "currency", None), str):
        return _clip(f"{amount} {e.currency}")
    facts = [f"{attr}: {value}" for attr in facts_of
             if (value := getattr(e, attr, None)) is not None and value != ""]
    return _clip("; ".join(facts)) if facts else None


def has_body(event: Customer.Event) -> bool:
    # Read from the instance first: ``getattr`` with a default on an absent attribute
    # raises and catches inside (most events have neither field).
    d = event.__dict__
    text = d["body_text"] if "body_text" in d else getattr(event, "body_text", None)
    return bool(text or (d["body_ref"] if "body_ref" in d else getattr(event, "body_ref", None)))


_NOT_PAYLOAD = frozenset(("originator_id", "originator_version", "timestamp"))
_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _fallback(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a read model")


def payload_json(event: Customer.Event) -> str:
    """Every field of the event as canonical JSON (for the on-demand detail); an
    erased customer's event keeps only its non-personal fields."""
    fields = event.__dict__.copy()  # a copy and three pops: cheaper than a comprehension
    for name in _NOT_PAYLOAD:
        fields.pop(name, None)
    if fields.get(ERASED_FLAG):
        fields = _without_personal(type(event).__name__, fields)
    return orjson.dumps(fields, option=_JSON_OPTIONS, default=_fallback).decode()


# -- erasure -----------------------------------------------------------------
ERASED_NAME = "(erased)"
ERASED_FLAG = "personal_data_erased"


def is_erased(event: Customer.Event) -> bool:
    """True when the event was read after its customer's data key was destroyed."""
    return bool(event.__dict__.get(ERASED_FLAG))


def _without_personal(class_name: str, fields: dict[str, Any]) -> dict[str, Any]:
    private = personal_fields(class_name)
    kept = {k: v for k, v in fields.items() if k not in private}
    kept[ERASED_FLAG] = True
    return kept


@lru_cache(maxsize=1)
def _class_names_by_kind() -> dict[str, str]:
    return {kind_name(cls): cls.__name__ for cls in customer_event_classes()}


def erased_payload(kind: str, body: str) -> str:
    """A stored detail body as it reads after erasure: what ``payload_json`` gives for
    the same event read without its key (so a live redaction equals a rebuild)."""
    fields = orjson.loads(body)
    kept = _without_personal(_class_names_by_kind()[kind], fields)
    return orjson.dumps(kept, option=_JSON_OPTIONS).decode()
