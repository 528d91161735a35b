"""The events' JSON transcoder on orjson, writing the bytes the library's transcoder writes.

Selected with the library's ``TRANSCODER_TOPIC`` (``touchstream.wiring``). It
is a ``JSONTranscoder``, so the application registers the same transcodings
on it (UUID as hex, datetime as ISO, Decimal as str, and any a subclass adds),
and it stores them the same way: ``{"_type_": name, "_data_": …}``, compact
separators, UTF-8 unescaped. Events written before it and after it are the
same bytes, so nothing is versioned: old stores read as they are, and a
reader on the library's transcoder reads what this one wrote (both checked
by ``tests/unit/test_orjson_transcoder.py``).

Why: the library's transcoder calls back into Python for every UUID and
datetime, and decodes with a Python ``object_hook`` on every JSON object.
Here one Python pass tags the registered types and orjson does the rest;
decoding runs orjson, then one pass that untags.

``encode_prepared`` is ``encode`` for a state whose UUIDs were tagged by the caller
(``tag``): orjson's ``default`` hook tags the datetimes and Decimals wherever they
are, so no Python pass runs over the keys (the bulk writer's rows, where the
per-key pass was about half the cost of transcoding a state). ``tag_names`` lets that
caller tag its ids and times itself, without orjson calling back for each.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

_SCALARS = frozenset({str, int, float, bool, type(None)})
_OPTIONS = orjson.OPT_NON_STR_KEYS  # as ``json``: int/float/bool/None keys become strings
# ``encode_prepared``: datetimes and dataclasses go to ``default`` as any unregistered
# type does in ``encode`` (orjson would write them in its own way).
_PREPARED = _OPTIONS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder``'s format and transcodings, encoded and decoded by orjson."""

    def encode(self, obj: Any) -> bytes:
        if obj.__class__ is dict:  # an event's state: mostly scalars, a few ids and times
            types = self.types
            tagged = {}
            for k, v in obj.items():
                cls = v.__class__
                if cls not in _SCALARS:
                    transcoding = types.get(cls)
                    if transcoding is None:
                        v = self._tagged(v)
                    else:
                        data = transcoding.encode(v)
                        if data.__class__ is not str:
                            data = self._tagged(data)
                        v = {"_type_": transcoding.name, "_data_": data}
                tagged[k] = v
            return orjson.dumps(tagged, option=_OPTIONS)
        return orjson.dumps(self._tagged(obj), option=_OPTIONS)

    def encode_prepared(self, obj: Any) -> bytes:
        """``encode(obj)``'s bytes for an ``obj`` holding no UUID except as ``tag`` gave it
        (orjson writes a UUID natively, untagged: the caller's guarantee)."""
        try:
            return orjson.dumps(obj, default=self._default, option=_PREPARED)
        except orjson.JSONEncodeError as exc:
            if isinstance(exc.__cause__, TranscodingNotRegisteredError):
                raise exc.__cause__ from None
            raise

    def tag(self, o: Any) -> Any:
        """``o`` as ``encode`` writes it (a registered type as its ``_type_``/``_data_``)."""
        return self._tagged(o)

    def tag_names(self) -> tuple[str | None, str | None]:
        """The names ``encode`` tags a UUID and a datetime with when their transcodings are
        the library's own (``UUIDAsHex``: ``{"_type_": name, "_data_": u.hex}``;
        ``DatetimeAsISO``: ``d.isoformat()``), so that a caller may build those tags itself
        without a call per value; None for a type transcoded any other way."""
        found = [(self.types.get(cls), kind) for cls, kind in ((UUID, UUIDAsHex),
                                                                (datetime, DatetimeAsISO))]
        return tuple(t.name if type(t) is kind else None  # type: ignore[return-value]
                     for t, kind in found)

    def _default(self, o: Any) -> Any:
        transcoding = self.types.get(o.__class__)
        if transcoding is None:
            return self._tagged(o)  # raises as ``encode`` does
        data = transcoding.encode(o)
        if data.__class__ is not str:  # a datetime's or a Decimal's is: no call for it
            data = self._tagged(data)
        return {"_type_": transcoding.name, "_data_": data}

    def decode(self, data: bytes) -> Any:
        obj = orjson.loads(data)
        if obj.__class__ is not dict:
            return self._untagged(obj)
        # An event's state: flat, with an id and a time or two tagged at the top level.
        # Those are decoded here straight by the library's own rules (``_fast``), the
        # rest as ``_untagged`` does: the library's generic path per value was a third
        # of a rebuild's decoding.
        fast = self._fast
        if fast is None:
            fast = self._fast = _fast_decoders(self)
        untagged = self._untagged
        for k, v in obj.items():
            cls = v.__class__
            if cls is dict:
                if len(v) == 2 and v.get("_data_").__class__ is str:
                    decoder = fast.get(v.get("_type_"))  # type: ignore[arg-type]
                    if decoder is not None:
                        obj[k] = decoder(v["_data_"])
                        continue
                obj[k] = untagged(v)
            elif cls is list:
                obj[k] = untagged(v)
        return obj

    _fast: dict[str, Any] | None = None

    def _tagged(self, o: Any) -> Any:
        cls = o.__class__
        if cls in _SCALARS:
            return o
        if cls is dict:
            tagged = self._tagged
            return {k: v if v.__class__ in _SCALARS else tagged(v) for k, v in o.items()}
        if cls is list or cls is tuple:
            tagged = self._tagged
            return [v if v.__class__ in _SCALARS else tagged(v) for v in o]
        transcoding = self.types.get(cls)
        if transcoding is not None:
            return {"_type_": transcoding.name, "_data_": self._tagged(transcoding.encode(o))}
        if isinstance(o, (str, int, float)) and not isinstance(o, Decimal):
            return o  # subclasses (enums): ``json`` writes them as their value too
        raise TranscodingNotRegisteredError(
            f"Object of type {cls} is not serializable. Please define and register "
            "a custom transcoding for this type."
        )

    def _untagged(self, o: Any) -> Any:
        cls = o.__class__
        if cls is dict:
            if len(o) == 2 and "_type_" in o and "_data_" in o:
                data = o["_data_"]
                if data.__class__ is dict or data.__class__ is list:
                    o["_data_"] = self._untagged(data)  # inner first, as ``object_hook``
                return self._decode_obj(o)  # the library's: unknown names raise as there
            untagged = self._untagged
            for k, v in o.items():
                if v.__class__ is dict or v.__class__ is list:
                    o[k] = untagged(v)
            return o
        if cls is list:
            untagged = self._untagged
            for i, v in enumerate(o):
                if v.__class__ is dict or v.__class__ is list:
                    o[i] = untagged(v)
        return o


def _fast_decoders(transcoder: JSONTranscoder) -> dict[str, Any]:
    """Decoders of the registered names whose transcoding is the library's own UUID or
    datetime one (a subclass or a replacement keeps its own ``decode``)."""
    found: dict[str, Any] = {}
    for name, transcoding in transcoder.names.items():
        if type(transcoding) is UUIDAsHex:
            found[name] = _uuid
        elif type(transcoding) is DatetimeAsISO:
            found[name] = datetime.fromisoformat
    return found


def _uuid(data: str) -> UUID:
    """``UUID(data)`` for 32 hex digits, without its parsing of other spellings (any other
    text goes through ``UUID`` itself: the same value or the same error)."""
    if len(data) != 32 or not data.isalnum():
        return UUID(data)
    value = object.__new__(UUID)
    object.__setattr__(value, "int", int(data, 16))
    object.__setattr__(value, "is_safe", SafeUUID.unknown)
    return value
