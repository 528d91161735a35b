"""A mapper that encrypts each customer event's personal fields under that customer's key.

Plugged into the write model in place of the library's mapper, so everything
that reads events (aggregates, projections, rebuilds, replays, exports) goes
through it. Stored state keeps the non-personal fields in clear and the
personal ones (``domain.personal``) in one AES-256-GCM envelope::

    {..clear fields.., "_sealed": "<base64 nonce||ciphertext>", "_sealed_v": 1}

The authenticated data is ``stream id | version | topic``: an envelope moved
to another event, another version or another stream fails to decrypt and is
reported as tampering, never decoded silently. Snapshots of customers are
sealed whole (their ``state``) under the same key.

Once a customer's key is destroyed, their events still decode: the clear
fields as recorded, every personal field as ``None`` (or an empty list/dict),
and ``personal_data_erased`` set to True on the event, so projections redact
and every non-personal count stays what it was.

A touchpoint held for triage (``domain.claims:HeldTouchpoint.Held``) is sealed
the same way under a key of its own (``domain.personal.held_subject``): it
belongs to no customer yet. Its key is destroyed when it is assigned or when
the person it names is erased; it then reads with ``personal_data_erased``.
A message the email channel quarantined (``Mailbox.MessageQuarantined``) is
sealed under a key of that entry alone (``domain.personal.quarantined_subject``,
by its event id, which stays in clear) and destroyed by the erasure of the
person it names.
"""

from __future__ import annotations

import binascii
import os
import typing
from collections.abc import Callable
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from cryptography.exceptions import InvalidTag
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from domain.personal import (
    HELD_PERSONAL,
    QUARANTINED_PERSONAL,
    held_subject,
    personal_fields,
    quarantined_subject,
    redacted_value,
)
from projections.events import event_class, is_customer_topic
from touchstream.adapters.transcoder import OrjsonTranscoder
from touchstream.privacy.datakeys import NONCE_BYTES, DataKeys, SubjectErasedError

CUSTOMER_TOPIC_PREFIX = "domain.customer:Customer."
CUSTOMER_TOPIC = "domain.customer:Customer"
SNAPSHOT_TOPIC = "eventsourcing.domain:Snapshot"
ERASE_EVENT_TOPIC = CUSTOMER_TOPIC_PREFIX + "PersonalDataErased"
HELD_TOPIC = "domain.claims:HeldTouchpoint.Held"
QUARANTINED_TOPIC = "domain.mailbox:Mailbox.MessageQuarantined"
SEALED = "_sealed"
SEALED_VERSION = "_sealed_v"
ERASED_FLAG = "personal_data_erased"
STREAM_PREFIX = "customer-"  # of prefixed (EventStoreDB) stream names
STREAM_CACHE_SIZE = 10_000


class TamperedRecordError(MapperDeserialisationError):
    """Raised when an encrypted event does not authenticate: changed, moved or truncated."""


def subject_of(originator_id: Any) -> str:
    """The data subject of a customer stream: the customer's uuid."""
    return str(originator_id).removeprefix(STREAM_PREFIX)


def _subject(topic: str, originator_id: Any, state: dict[str, Any]) -> str:
    if topic == HELD_TOPIC:
        return held_subject(originator_id)
    if topic == QUARANTINED_TOPIC:
        return quarantined_subject(state["event_id"])  # one mailbox stream, many entries
    return subject_of(originator_id)


class PersonalDataMapper(Mapper[Any]):
    """The library's mapper with per-customer encryption of personal fields."""

    def __init__(self, transcoder: Transcoder, keys: DataKeys) -> None:
        super().__init__(transcoder=transcoder)
        self.keys = keys
        self._encode_secret, self._decode_secret = _secret_codec(transcoder)
        # str() of a UUID costs about as much as the encryption; a stream's events come
        # in runs (bulk import, rebuilds), so its string is kept (bounded, dropped whole).
        self._streams: dict[int | str, str] = {}

    # -- write -------------------------------------------------------------
    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        topic = get_topic(type(domain_event))
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return self.stored_event_of(originator_id, originator_version, topic, state)

    def stored_event_of(
        self, originator_id: Any, originator_version: int, topic: str, state: dict[str, Any]
    ) -> StoredEvent:
        """The stored event of an event's state (``vars`` of the event without its id and
        version, ``class_version`` last when above 1), as ``to_stored_event`` stores it:
        the bulk writer (``commands.bulk_rows``) builds states without event objects.
        ``state`` is consumed."""
        return self._stored(originator_id, originator_version, topic, state,
                            self._encode_secret, self.transcoder.encode)

    def prepared_writer(self) -> tuple[Callable[[Any, int, str, dict[str, Any]], StoredEvent],
                                       Callable[[Any], Any]] | None:
        """``stored_event_of`` for states whose UUIDs the caller tagged with the returned
        ``tag`` (the transcoder's ``encode_prepared``: the same bytes without a Python pass
        over the keys), or None when the transcoder has no such encoding."""
        encode = getattr(self.transcoder, "encode_prepared", None)
        tag = getattr(self.transcoder, "tag", None)
        if encode is None or tag is None:
            return None

        def stored_event_of(originator_id: Any, originator_version: int, topic: str,
                            state: dict[str, Any]) -> StoredEvent:
            return self._stored(originator_id, originator_version, topic, state,
                                encode, encode)

        return stored_event_of, tag

    def _stored(self, originator_id: Any, originator_version: int, topic: str,
                state: dict[str, Any], encode_secret: Callable[[Any], bytes],
                encode: Callable[[Any], bytes]) -> StoredEvent:
        private = _private_names(topic, state)
        if private:
            secret = {name: state.pop(name) for name in private if name in state}
            stream = self._stream(originator_id)
            cipher = self.keys.cipher_for_write(_subject(topic, stream, state))
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(
                nonce, encode_secret(secret), _aad(stream, originator_version, topic),
            )
            state[SEALED] = binascii.b2a_base64(nonce + sealed, newline=False).decode()
            state[SEALED_VERSION] = 1
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=encode(state),
        )

    # -- read --------------------------------------------------------------
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        try:
            state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        except Exception as exc:
            raise MapperDeserialisationError(
                f"cannot decode event {stored_event.originator_id} "
                f"v{stored_event.originator_version} ({stored_event.topic}): {exc}"
            ) from exc
        if SEALED in state:
            self._open(stored_event, state)
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        if stored_event.topic == ERASE_EVENT_TOPIC:
            # Every later read in this process must see the key as gone.
            self.keys.forget(subject_of(stored_event.originator_id))
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

    def _open(self, stored: StoredEvent, state: dict[str, Any]) -> None:
        blob = memoryview(binascii.a2b_base64(state.pop(SEALED)))  # sliced without copies
        state.pop(SEALED_VERSION, None)
        stream = self._stream(stored.originator_id)
        subject = _subject(stored.topic, stream, state)
        try:
            cipher = self.keys.cipher_for_read(subject)
        except SubjectErasedError:
            state.update(_redacted(stored.topic, state))
            state[ERASED_FLAG] = True
            return
        try:
            plain = cipher.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                _aad(stream, stored.originator_version, stored.topic),
            )
        except InvalidTag as exc:
            raise TamperedRecordError(
                f"event {stored.originator_id} v{stored.originator_version} "
                f"({stored.topic}) failed authentication: its stored bytes were changed, "
                "moved from another event, or truncated"
            ) from exc
        state.update(self._decode_secret(plain))

    def _stream(self, originator_id: Any) -> str:
        # Keyed by the UUID's int (hashing a UUID is a Python-level call); a string id
        # (prefixed EventStoreDB streams) is its own key.
        key = getattr(originator_id, "int", originator_id)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= STREAM_CACHE_SIZE:
                self._streams = {}
            stream = self._streams[key] = str(originator_id)
        return stream


def _secret_codec(transcoder: Transcoder) -> tuple[Callable[[Any], bytes],
                                                   Callable[[bytes], Any]]:
    """Encode/decode of the sealed part: the transcoder's own JSON, through an encoder
    built once instead of on every call (the library's ``JSONEncoder.encode`` builds
    its C encoder per call, which cost as much again as the encryption). The output is
    the bytes ``transcoder.encode`` gives (without its circular-reference check: event
    state is never circular); any other transcoder is used as it is."""
    if (not isinstance(transcoder, JSONTranscoder) or isinstance(transcoder, OrjsonTranscoder)
            or c_make_encoder is None):
        return transcoder.encode, transcoder.decode
    encoder = transcoder.encoder
    iterencode = c_make_encoder(
        None, encoder.default, encode_basestring, None, encoder.key_separator,
        encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)
    scan = transcoder.decoder.scan_once

    def encode(obj: Any) -> bytes:
        return "".join(iterencode(obj, 0)).encode("utf8")

    def decode(data: bytes) -> Any:
        text = data.decode("utf8")
        obj, end = scan(text, 0)
        if end != len(text):  # never for bytes ``encode`` wrote (they authenticated)
            raise ValueError("trailing bytes after the sealed fields")
        return obj

    return encode, decode


def _aad(stream: str, version: int, topic: str) -> bytes:
    return f"{stream}|{version}|{topic}".encode()


def _private_names(topic: str, state: dict[str, Any]) -> frozenset[str]:
    if is_customer_topic(topic):
        return _event_private_names(topic)
    if topic == HELD_TOPIC:
        return HELD_PERSONAL
    if topic == QUARANTINED_TOPIC:
        return QUARANTINED_PERSONAL
    if topic == SNAPSHOT_TOPIC and state.get("topic") == CUSTOMER_TOPIC:
        # An erased customer's snapshot holds no personal data (the erasure
        # event's apply cleared it): kept in clear, it stays readable after
        # the key is gone and supersedes the sealed snapshots before it.
        inner = state.get("state")
        if isinstance(inner, dict) and inner.get("erased"):
            return frozenset()
        return frozenset({"state"})
    return frozenset()


@lru_cache(maxsize=256)
def _event_private_names(topic: str) -> frozenset[str]:
    if topic.startswith(CUSTOMER_TOPIC_PREFIX):
        return personal_fields(topic.removeprefix(CUSTOMER_TOPIC_PREFIX))
    return personal_fields(event_class(topic).__name__)  # a business area's event


def _redacted(topic: str, state: dict[str, Any]) -> dict[str, Any]:
    if topic == SNAPSHOT_TOPIC:
        raise SubjectErasedError("a snapshot of an erased customer cannot be read")
    hints = _hints(topic)
    return {name: redacted_value(hints.get(name)) for name in _private_names(topic, state)}


@lru_cache(maxsize=256)
def _hints(topic: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(resolve_topic(topic))
    except Exception:  # noqa: BLE001 - unresolvable hints: every redaction is None
        return {}
