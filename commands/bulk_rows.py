"""The bulk writer's rows: stored events of plain touchpoints, built without event objects
(and one such row per command, ``PlainTouchpoints.record``, on a cached customer).

A backfill spends most of its time per event in generic machinery: the
library builds a domain event object (``trigger_event``: keyword checks, a
frozen dataclass, ``mutate``), collects it, and its mapper turns the object
back into a dict before sealing and transcoding it. For a *plain* touchpoint
(a call, call step, callback, fax, visit, web form, or a recorded email outside
any case's thread: its event only counts a contact on the customer, and no
business area reacts to it) the decision is trivial once the customer is open,
so this module builds the event's state
dict directly, in the order ``vars(event)`` has, and hands it to the mapper's
``stored_event_of`` (``touchstream.privacy.mapper``: the same sealing and
transcoding as ``to_stored_event``), or does what the library's ``Mapper``
does (transcode, compress, encrypt) when that is the mapper in use. The
customer is advanced as the event's ``mutate`` would advance it (the channel's
count and last contact, its version and ``modified_on``), so what the cache and
the snapshots hold is what a replay of the stored events gives.

An email's thread id is worked out as ``Customer.record`` does
(``email_thread_id``); an email in the thread of one of the customer's service
cases joins the case, so it is ``NotPlain``. Everything else (outbound email
records; bounces; a mapper of another kind) goes through the domain: ``apply_touchpoint``
and the mapper's ``to_stored_event``, in the same save. ``tests/unit/test_bulk_rows.py``
proves the bytes, the topic and the customer's state equal the library path's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic
from pydantic import AwareDatetime

from commands import messages as m
from commands.context import WriteContext
from commands.idempotency import SourceKeyRows
from commands.ports import Recorded
from commands.touchpoints import LOOKUP_ONLY, TOUCH_EVENTS
from domain.customer import Customer, check_not_ahead, email_thread_id
from domain.errors import DomainError
from domain.service import AREA as SERVICE_AREA

# Event fields every customer event carries ahead of its own (after originator id,
# version and timestamp), in declaration order.
_BASE = ("originator_id", "originator_version", "timestamp")
# Outbound email records: ``Customer.record`` rewrites their ids (``outbound_email_fields``).
_DOMAIN_ONLY = (Customer.EmailQueued,)

Encode = Callable[[Any, int, str, dict[str, Any]], StoredEvent]
Tag = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What is fixed per command class: its event class, topic, field order."""

    event_class: type[Customer.Event]
    topic: str
    names: tuple[str, ...]  # the event's own fields, after the provenance's
    class_version: int
    exclude: frozenset[str]
    # Fields ``model_dump`` may change (a nested model, an enum…): the command's fields
    # are read as validated when none is set (every field a scalar, or a list/dict of
    # them; or those fields empty).
    dumped: tuple[str, ...]
    threaded: bool  # an email: its thread id is worked out, its thread may be a case's

    @property
    def direct(self) -> bool:
        """Whether every command of this shape is read as validated."""
        return not self.dumped


@cache
def _shape(command_class: type[m.Touchpoint]) -> _Shape | None:
    """The shape of a plain touchpoint's event, or None when its command is not plain."""
    event_class = TOUCH_EVENTS.get(command_class)
    if (event_class is None or event_class in _DOMAIN_ONLY
            or event_class.apply is not Customer.Event.apply):
        return None
    names = tuple(f.name for f in dataclasses.fields(event_class))  # type: ignore[arg-type]
    provenance = tuple(f.name for f in dataclasses.fields(Customer.Event))  # type: ignore[arg-type]
    if names[:len(provenance)] != provenance or provenance[:3] != _BASE:
        return None  # not the layout this module knows: the domain path decides
    own = names[len(provenance):]
    exclude = frozenset(m.Touchpoint.model_fields) | LOOKUP_ONLY
    if set(own) != set(command_class.model_fields) - exclude:
        return None  # the command does not carry exactly the event's fields
    dumped = tuple(name for name in own
                   if not _dumps_as_is(command_class.model_fields[name].annotation))
    threaded = event_class is Customer.EmailRecorded
    if threaded and not {"thread_id", "message_id", "in_reply_to", "references"} <= set(own):
        return None
    return _Shape(event_class, get_topic(event_class), own,
                  getattr(event_class, "class_version", 1), exclude, dumped, threaded)


_AS_IS = (str, int, float, bool, type(None), datetime, AwareDatetime)


def _dumps_as_is(annotation: Any) -> bool:
    """Whether ``model_dump`` gives a validated value of this type back unchanged (equal
    values of the same types; lists and dicts copied, which a state about to be encoded
    does not need): no nested model, enum or custom serialiser anywhere inside."""
    if annotation in _AS_IS:
        return True
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return all(type(a) in (str, int, bool) for a in args)
    if origin is Annotated:
        return _dumps_as_is(args[0])
    if origin in (Union, UnionType, list, dict):
        return all(_dumps_as_is(a) for a in args)
    return False


@dataclasses.dataclass(frozen=True)
class Writer:
    """How to store a state for a mapper: ``encode`` any state; ``prepared`` a state of a
    ``direct`` shape whose UUIDs went through ``tag`` (the transcoder's ``encode_prepared``:
    the same bytes without a Python pass over the keys), when the transcoder has it.
    ``uuid_tag``/``datetime_tag``: the names the transcoder tags a UUID's hex and a
    datetime's ``isoformat()`` with (its ``tag_names``), when it writes them that way: a
    prepared state's id and times are then tagged here, without a call each."""

    encode: Encode
    prepared: Encode | None = None
    tag: Tag | None = None
    uuid_tag: str | None = None
    datetime_tag: str | None = None


def encoder_for(mapper: Mapper[Any]) -> Writer | None:
    """How to store a state for ``mapper``, or None (unknown mapper: the domain path)."""
    tag_names = getattr(mapper.transcoder, "tag_names", None)
    names = tag_names() if tag_names is not None else (None, None)
    stored_event_of = getattr(mapper, "stored_event_of", None)
    if stored_event_of is not None:
        prepared_writer = getattr(mapper, "prepared_writer", None)
        prepared = prepared_writer() if prepared_writer is not None else None
        if prepared is None:
            return Writer(stored_event_of)
        return Writer(stored_event_of, *prepared, *names)
    if type(mapper) is not Mapper:
        return None
    transcoder, compressor, cipher = mapper.transcoder, mapper.compressor, mapper.cipher

    def writer(to_bytes: Callable[[Any], bytes]) -> Encode:
        def encode(originator_id: Any, version: int, topic: str,
                   state: dict[str, Any]) -> StoredEvent:
            # ``Mapper.to_stored_event`` from the state on.
            data = to_bytes(state)
            if compressor:
                data = compressor.compress(data)
            if cipher:
                data = cipher.encrypt(data)
            return StoredEvent(originator_id=originator_id, originator_version=version,
                               topic=topic, state=data)

        return encode

    encode_prepared = getattr(transcoder, "encode_prepared", None)
    tag = getattr(transcoder, "tag", None)
    if encode_prepared is None or tag is None:
        return Writer(writer(transcoder.encode))
    return Writer(writer(transcoder.encode), writer(encode_prepared), tag, *names)


class PlainTouchpoints:
    """Decides plain touchpoints on an open customer and builds their stored events
    (``writer``: ``encoder_for`` the hub's mapper)."""

    def __init__(self, w: WriteContext, writer: Writer | None) -> None:
        self.w = w
        self.writer = writer

    # The last customer's id and its text: one tuple, so threads sharing this object (one
    # command each) never read one customer's text under another's id.
    _last_text: tuple[Any, str] = (None, "")

    def _customer_text(self, customer: Customer) -> str:
        """The customer's id as ``Customer.record`` scopes a thread id with it; a bulk save's
        events come customer by customer, so the last one's is kept."""
        last, text = self._last_text
        if last != customer.id:
            text = str(customer.id).removeprefix("customer-")
            self._last_text = (customer.id, text)
        return text

    def shape(self, cmd: m.Touchpoint) -> _Shape | None:
        """Whether ``cmd`` can be built here (None: through the domain)."""
        return _shape(type(cmd)) if self.writer is not None else None

    def build(self, customer: Customer, cmd: m.Touchpoint, key: str,
              shape: _Shape) -> tuple[StoredEvent, UUID]:
        """The stored event of ``cmd`` as the customer's next event, and its event id; the
        customer advanced past it. Refuses as ``Customer.record`` does (closed customer,
        a date too far ahead) before changing anything."""
        w = self.w  # the checks in the order of ``provenances`` then ``Customer.record``
        occurred = cmd.occurred_at
        if occurred is None:
            occurred = w.clock()
        elif w.max_future_skew is not None:
            check_not_ahead(occurred, w.clock(), w.max_future_skew)
        customer._check_open()
        if occurred.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")  # as Provenance.fields
        given = cmd.__dict__
        direct = shape.direct or all(_empty(given[name]) for name in shape.dumped)
        thread_id = ""
        if shape.threaded:  # as ``Customer.record``
            thread_id = given["thread_id"] or email_thread_id(
                self._customer_text(customer), given["message_id"], given["in_reply_to"],
                given["references"])
        # ``join_thread``: it reads (and so creates) the service area; an email in a case's
        # thread joins the case (and an event without a thread could only join one kept
        # under an empty thread id, never kept).
        if customer.area(SERVICE_AREA).get("threads", {}).get(thread_id) is not None:
            raise NotPlain
        event_id = w.naming.event_id(key, 0)
        fields = given if direct else cmd.model_dump(
            exclude=shape.exclude)  # type: ignore[arg-type]
        timestamp: datetime = shape.event_class.create_timestamp()
        channel = cmd.channel
        state: dict[str, Any] = {
            "timestamp": timestamp,
            "event_id": event_id,
            "occurred_at": occurred,
            "channel": channel,
            "direction": cmd.direction,
            "actor": cmd.actor or "unknown",
            "source_key": key,
            "correlation_id": cmd.correlation_id or key,
            "causation_id": cmd.causation_id or key,
        }
        for name in shape.names:
            state[name] = fields[name]
        if shape.threaded:
            state["thread_id"] = thread_id
        if shape.class_version > 1:
            state["class_version"] = shape.class_version
        version = customer.version + 1
        stamp = occurred.isoformat()  # the stored time's text and the last contact's, once
        writer = self.writer
        assert writer is not None
        if direct and writer.prepared is not None and writer.tag is not None:
            # The only UUID: fields read as validated hold none.
            state["event_id"] = (writer.tag(event_id) if writer.uuid_tag is None
                                 else {"_type_": writer.uuid_tag, "_data_": event_id.hex})
            if (name := writer.datetime_tag) is not None:  # else ``encode_prepared`` tags them
                if timestamp.__class__ is datetime:
                    state["timestamp"] = {"_type_": name, "_data_": timestamp.isoformat()}
                if occurred.__class__ is datetime:
                    state["occurred_at"] = {"_type_": name, "_data_": stamp}
            stored = writer.prepared(customer.id, version, shape.topic, state)
        else:
            stored = writer.encode(customer.id, version, shape.topic, state)
        # ``Customer.Event.apply`` then the library's ``mutate``.
        customer._count_stamp(channel, stamp)
        customer.version = version
        customer.modified_on = timestamp
        return stored, event_id

    def record(self, cmd: m.Touchpoint, key: str, customer_id: UUID) -> Recorded | None:
        """One plain touchpoint as one command: its row built on a ``touch_copy`` of the
        cached customer and saved with its key row (``CustomerStore.save_built``): the
        transaction, the constraints and the answer of the domain path's save.

        None when it is not decided here, with nothing written: not a plain touchpoint,
        the customer not cached, merged, of another partner, refusing it, or moved on
        since it was cached (then dropped from the cache: the next load reads the
        store). The caller then runs the domain path from the start, which decides
        and answers each of these as ever. A key recorded already answers its first
        result, as there."""
        w = self.w
        if not isinstance(w.keys, SourceKeyRows):  # the key's UNIQUE row must decide
            return None
        shape = self.shape(cmd)
        if shape is None:
            return None
        customer = w.store.load_for_touch(customer_id)
        if customer is None or customer.merged_into is not None:
            return None
        partner = cmd.partner_scope
        if partner is not None and customer.partner_id != partner:
            return None
        old_version = customer.version
        try:
            stored, event_id = self.build(customer, cmd, key, shape)
        except (NotPlain, DomainError, ValueError):
            return None
        try:
            return w.store.save_built(customer, old_version, stored, event_id, key)
        except IntegrityError as exc:
            if (done := w.keys.duplicate(key, exc)) is not None:
                return done
            w.store.forget(customer_id)
            return None


def _empty(value: Any) -> bool:
    """None, or an empty list or dict: what ``model_dump`` gives back as it is."""
    return value is None or ((value.__class__ is list or value.__class__ is dict) and not value)


class NotPlain(Exception):
    """This touchpoint must go through the domain after all."""
