"""The orjson transcoder writes the library transcoder's bytes, and each reads the other's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from commands import messages as m
from tests.support.demo import T0
from touchstream import settings as settings_mod
from touchstream import wiring
from touchstream.adapters.transcoder import OrjsonTranscoder, _uuid


class _Colour(str, Enum):
    RED = "red"


def _pair() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    library, ours = JSONTranscoder(), OrjsonTranscoder()
    Application().register_transcodings(library)
    Application().register_transcodings(ours)
    return library, ours


STATES = [
    {"event_id": uuid4(), "occurred_at": T0, "timestamp": datetime.now(UTC), "n": 3,
     "x": 1.25, "ok": True, "none": None, "ivr_choices": ["2", "1"],
     "details": {"CallSid": "CA1", "Nested": {"at": T0, "ids": [uuid4(), uuid4()]}}},
    {"text": "ünïcode \"quotes\" \\ slashes \n\t\u2028 😀 \x1f", "amount": Decimal("12.30"),
     "when": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-5)))},
    {"tuple": (1, "a", uuid4()), "int_keys": {1: "a", 2: "b"}, "colour": _Colour.RED,
     "empty": {}, "empty_list": [], "deep": [[{"_type_": "x"}]]},
    {"state": {"areas": {"sales": {"open": [{"id": "o-1", "value": "10.5"}]}},
               "contact_points": {"phone": ["+442079460123"]}, "version": 51}},
]


@pytest.mark.parametrize("state", STATES)
def test_the_bytes_are_the_library_transcoders_and_each_reads_the_others(
        state: dict[str, object]) -> None:
    library, ours = _pair()
    written = ours.encode(state)
    assert written == library.encode(state)
    assert ours.decode(written) == library.decode(written)
    assert ours.decode(library.encode(state)) == library.decode(written)


def test_an_unregistered_type_raises_as_in_the_library() -> None:
    library, ours = _pair()
    for transcoder in (library, ours):
        with pytest.raises(TranscodingNotRegisteredError):
            transcoder.encode({"x": object()})


def test_a_store_written_with_the_library_transcoder_reads_the_same_in_production(
        tmp_path: Path) -> None:
    settings = settings_mod.load({"TOUCHSTREAM_DATA": str(tmp_path / "data"),
                                  "TOUCHSTREAM_DEFAULT_REGION": "GB"})
    old = wiring.build_hub(settings, {"TRANSCODER_TOPIC": ""})  # as stores were written before
    assert type(old.mapper.transcoder) is JSONTranscoder
    try:
        cid = UUID(old.execute(m.RegisterCustomer(
            name="Ada Lovelace", company="Analytical Ltd", occurred_at=T0,
            contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")],
        )).customer_id)
        old.execute(m.LogCall(customer_id=cid, call_id="c-1", from_number="+442079460123",
                              ivr_choices=["2", "1"], summary="ünïcode", occurred_at=T0))
        before = [vars(e) for e in old.stream(cid)]
        old_bytes = [bytes(s.state) for s in old.recorder.select_events(cid)]
    finally:
        old.close()
    new = wiring.build_hub(settings)
    try:
        assert isinstance(new.mapper.transcoder, OrjsonTranscoder)
        assert [vars(e) for e in new.stream(cid)] == before
        new.execute(m.LogCall(customer_id=cid, call_id="c-2", occurred_at=T0))
        assert [bytes(s.state) for s in new.recorder.select_events(cid)][:len(old_bytes)] \
            == old_bytes
    finally:
        new.close()
    again = wiring.build_hub(settings, {"TRANSCODER_TOPIC": ""})  # and back: a rollback reads
    try:
        assert [getattr(e, "call_id", None) for e in again.stream(cid)][-2:] == ["c-1", "c-2"]
    finally:
        again.close()


def _uuids_tagged(ours: OrjsonTranscoder, o: object) -> object:
    if isinstance(o, UUID):
        return ours.tag(o)
    if isinstance(o, dict):
        return {k: _uuids_tagged(ours, v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return type(o)(_uuids_tagged(ours, v) for v in o)
    return o


@pytest.mark.parametrize("state", STATES)
def test_a_prepared_state_encodes_to_the_library_transcoders_bytes(
        state: dict[str, object]) -> None:
    library, ours = _pair()
    assert ours.encode_prepared(_uuids_tagged(ours, state)) == library.encode(state)


@pytest.mark.parametrize("value", [object(), T0.date(), Path("p")])
def test_a_prepared_state_with_an_unregistered_type_raises_as_in_the_library(
        value: object) -> None:
    library, ours = _pair()
    with pytest.raises(TranscodingNotRegisteredError):
        library.encode({"x": [value]})
    with pytest.raises(TranscodingNotRegisteredError):
        ours.encode_prepared({"x": [value]})


_U = "3725825de7064de78d26b439a57243da"  # fixed: parameters must be equal on every xdist worker


@pytest.mark.parametrize("text", [
    _U, _U.upper(), str(UUID(_U)), "{" + _U + "}", "urn:uuid:" + _U,
    "g" * 32, "", "0x" + "0" * 30, "1_" + "0" * 30, " " * 32, "0" * 31,
])
def test_the_fast_uuid_decoder_gives_what_uuid_gives(text: str) -> None:
    """Ids are decoded without ``UUID``'s parsing of other spellings: the same value, or
    the same error, for every text."""
    try:
        expected: object = UUID(text)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            _uuid(text)
        return
    got = _uuid(text)
    assert got == expected and hash(got) == hash(expected) and str(got) == str(expected)
    assert got.is_safe == expected.is_safe  # type: ignore[attr-defined]
