"""Voiding and correcting touchpoints, and dates that are strict and not too far ahead.

The aggregate given/when/then on its collected events, then the write model
on the in-memory store (the reservation protocol: no source-key table).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from commands import messages as m
from commands.hub import CustomerNotFoundError, Hub
from domain.customer import Customer, Provenance, check_not_ahead
from domain.errors import (
    FutureOccurrenceError,
    InvalidTransitionError,
    TouchpointUnknownError,
    TouchpointVoidedError,
)
from touchstream import settings as settings_mod

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def prov(at: datetime = NOW, channel: str = "system") -> Provenance:
    return Provenance(uuid4(), at, channel, "internal", "tester", f"k{uuid4()}", "c", "c")


def visit(customer: Customer, at: datetime = NOW) -> Customer.Event:
    customer.record(Customer.VisitRecorded, prov(at, "visit"), visit_kind="field", staff="jo",
                    place="Leeds", purpose="repair", outcome="fixed", notes=None,
                    duration_min=30)
    return customer.pending_events[-1]  # type: ignore[return-value]


# -- the aggregate ------------------------------------------------------------------


def test_void_records_an_event_and_uncounts_the_touchpoint() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    target = visit(c)
    c.void_touchpoint(prov(), target, "wrong customer", history=list(c.pending_events))
    voided = c.collect_events()[-1]
    assert isinstance(voided, Customer.TouchpointVoided)
    assert (voided.voided_event_id, voided.voided_channel, voided.reason) == (
        str(target.event_id), "visit", "wrong customer")  # type: ignore[attr-defined]
    assert c.voided == (str(target.event_id),)  # type: ignore[attr-defined]
    assert c.touch_counts == {"visit": 0} and c.last_contact == {}


def test_the_write_models_last_contact_leaves_out_voided_and_uses_corrected_dates() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    early, typo = visit(c, NOW - 2 * DAY), visit(c, datetime(2099, 1, 1, tzinfo=UTC))
    assert c.last_contact["visit"].startswith("2099")
    c.void_touchpoint(prov(), typo, "year typo", history=list(c.pending_events))
    assert c.last_contact == {"visit": (NOW - 2 * DAY).isoformat()}
    c.correct_touchpoint(prov(), early, occurred_at=NOW - 5 * DAY, changes={}, reason="r",
                         now=NOW, max_skew=DAY, history=list(c.pending_events))
    assert c.last_contact == {"visit": (NOW - 5 * DAY).isoformat()}
    replayed: Any = None  # the same state again from the events alone
    for e in c.collect_events():
        replayed = e.mutate(replayed)
    assert replayed.last_contact == c.last_contact and replayed.voided == c.voided


def test_a_voided_touchpoint_cannot_be_voided_again_or_corrected() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    target = visit(c)
    c.void_touchpoint(prov(), target, "test", history=list(c.pending_events))
    with pytest.raises(TouchpointVoidedError):
        c.void_touchpoint(prov(), target, "again", history=[])
    with pytest.raises(TouchpointVoidedError):
        c.correct_touchpoint(prov(), target, occurred_at=NOW - DAY, changes={}, reason="r",
                             now=NOW, max_skew=DAY, history=[])


def test_only_touchpoints_of_this_stream_can_be_voided() -> None:
    ada, bob = (Customer.register(uuid4(), prov(), name=n) for n in ("Ada", "Bob"))
    registered = ada.pending_events[0]
    with pytest.raises(TouchpointUnknownError):
        ada.void_touchpoint(prov(), registered, "not a touchpoint", history=[])  # type: ignore[arg-type]
    with pytest.raises(TouchpointUnknownError):
        ada.void_touchpoint(prov(), visit(bob), "someone else's", history=[])


def test_correction_carries_the_date_and_the_changed_text_fields_only() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    target = visit(c)
    c.correct_touchpoint(prov(), target, occurred_at=NOW - 3 * DAY,
                         changes={"place": "York", "staff": "jo"}, reason="typo",
                         now=NOW, max_skew=DAY, history=list(c.pending_events))
    fixed = c.collect_events()[-1]
    assert isinstance(fixed, Customer.TouchpointCorrected)
    assert fixed.corrected_occurred_at == NOW - 3 * DAY
    assert fixed.changes == {"place": "York"}  # staff was already "jo"


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"changes": {"outcome": "broken"}}, InvalidTransitionError, "cannot be corrected"),
    ({"changes": {"call_id": "x"}}, InvalidTransitionError, "cannot be corrected"),
    ({"changes": {"place": "Leeds"}}, InvalidTransitionError, "changes nothing"),
    ({"occurred_at": NOW + 2 * DAY}, FutureOccurrenceError, "ahead"),
])
def test_corrections_that_are_refused(kwargs: dict[str, Any], error: type[Exception],
                                      words: str) -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    target = visit(c)
    args: dict[str, Any] = {"occurred_at": None, "changes": {}, **kwargs}
    with pytest.raises(error, match=words):
        c.correct_touchpoint(prov(), target, reason="r", now=NOW, max_skew=DAY, history=[],
                             **args)


def test_dates_ahead_of_the_clock_are_refused_beyond_the_skew_only() -> None:
    check_not_ahead(NOW + DAY, NOW, DAY)
    with pytest.raises(FutureOccurrenceError, match="ahead of the hub's clock"):
        check_not_ahead(NOW + DAY + timedelta(seconds=1), NOW, DAY)


# -- command messages: strict dates, no NUL ----------------------------------------------


@pytest.mark.parametrize("value", [
    0, 1700000000, 1700000000.5, "1700000000", "0", "2026-11-24T09:30:00", "2026-11-24",
    "24/11/2026 09:30", "2026-11-24T09:30:00+0100", True, None, "2026-02-30T09:30:00Z",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1899-12-31T23:59:59Z",
])
def test_occurred_at_must_be_rfc3339_with_an_offset(value: object) -> None:
    body = {"customer_id": str(uuid4()), "call_id": "c1", "occurred_at": value}
    if value is None:  # absent means "now": allowed
        assert m.LogCall.model_validate(body).occurred_at is None
        return
    with pytest.raises(ValidationError, match="RFC 3339|real date|timezone|outside"):
        m.LogCall.model_validate(body)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-24T09:30:00Z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
    ("2026-11-24t09:30:00.5+01:00", datetime(2026, 11, 24, 8, 30, 0, 500000, tzinfo=UTC)),
    ("2026-11-24T09:30:00.123456789-02:30",
     datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)),
])
def test_rfc3339_dates_are_read_exactly(value: str, expected: datetime) -> None:
    got = m.LogCall.model_validate({"call_id": "c", "occurred_at": value}).occurred_at
    assert got == expected


@pytest.mark.parametrize(("body", "where"), [
    ({"text": "a\x00b"}, "text"),
    ({"text": "ok", "source_key": "k\x00"}, "source_key"),
    ({"text": "ok", "actor": "\x00"}, "actor"),
])
def test_nul_characters_are_refused_naming_the_field(body: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=f"{where} contains a NUL"):
        m.AddNote.model_validate({"customer_id": str(uuid4()), **body})


def test_nul_characters_in_nested_values_and_keys_are_refused() -> None:
    form = {"form_name": "contact", "submission_id": "s", "email": "a@example.com"}
    with pytest.raises(ValidationError, match=r"fields\.msg contains a NUL"):
        m.RecordWebForm.model_validate({**form, "fields": {"msg": "hi\x00"}})
    with pytest.raises(ValidationError, match="contains a NUL"):
        m.RecordWebForm.model_validate({**form, "fields": {"m\x00": "hi"}})
    with pytest.raises(ValidationError, match=r"references\[1\] contains a NUL"):
        m.RecordEmail.model_validate({"message_id": "<m>", "from_address": "a@example.com",
                                      "references": ["<a>", "<b\x00>"]})


def test_the_skew_setting_defaults_to_one_day_and_must_be_positive() -> None:
    assert settings_mod.load({}).max_future_skew_s == 86_400
    assert settings_mod.load({"TOUCHSTREAM_MAX_FUTURE_SKEW_S": "300"}).max_future_skew_s == 300
    with pytest.raises(settings_mod.SettingsError, match="TOUCHSTREAM_MAX_FUTURE_SKEW_S"):
        settings_mod.load({"TOUCHSTREAM_MAX_FUTURE_SKEW_S": "soon"})


# -- the write model ---------------------------------------------------------------------


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=lambda: NOW,
            max_future_skew=timedelta(minutes=5))
    yield h
    h.close()


def register(hub: Hub, name: str) -> UUID:
    return UUID(hub.execute(m.RegisterCustomer(name=name, source_key=f"reg:{name}")).customer_id)


def call(hub: Hub, customer: UUID, call_id: str, at: datetime) -> UUID:
    result = hub.execute(m.LogCall(customer_id=customer, call_id=call_id, occurred_at=at))
    return UUID(result.event_ids[0])


def test_a_touchpoint_dated_beyond_the_skew_is_refused_and_records_nothing(hub: Hub) -> None:
    ada = register(hub, "Ada")
    with pytest.raises(FutureOccurrenceError):
        hub.execute(m.LogCall(customer_id=ada, call_id="c2099",
                              occurred_at=datetime(2099, 1, 1, tzinfo=UTC)))
    call(hub, ada, "c-soon", NOW + timedelta(minutes=4))  # clock drift is fine
    assert [type(e).__name__ for e in hub.stream(ada)] == ["Registered", "CallLogged"]


def test_void_is_idempotent_by_event_id_and_a_new_void_of_it_is_refused(hub: Hub) -> None:
    ada = register(hub, "Ada")
    event = call(hub, ada, "c1", NOW - DAY)
    first = hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=event, reason="test call"))
    again = hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=event, reason="test call"))
    assert not first.duplicate and again.duplicate and again.event_ids == first.event_ids
    with pytest.raises(TouchpointVoidedError):
        hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=event, reason="other",
                                     source_key="second-void"))
    assert [type(e).__name__ for e in hub.stream(ada)].count("TouchpointVoided") == 1
    assert hub.customer(ada).touch_counts == {"phone": 0}
    assert hub.customer(ada).last_contact == {}


def test_corrections_are_idempotent_by_source_key(hub: Hub) -> None:
    ada = register(hub, "Ada")
    event = call(hub, ada, "c1", NOW - DAY)
    cmd = m.CorrectTouchpoint(customer_id=ada, event_id=event, corrected_occurred_at=NOW - 2 * DAY,
                              reason="wrong day", source_key="fix-1")
    assert not hub.execute(cmd).duplicate
    assert hub.execute(cmd).duplicate
    fixes = [e for e in hub.stream(ada) if isinstance(e, Customer.TouchpointCorrected)]
    assert len(fixes) == 1 and fixes[0].corrected_occurred_at == NOW - 2 * DAY
    with pytest.raises(FutureOccurrenceError):
        hub.execute(m.CorrectTouchpoint(customer_id=ada, event_id=event, reason="r",
                                        corrected_occurred_at=NOW + DAY))


def test_a_merged_in_customers_touchpoint_is_voided_on_its_own_stream(hub: Hub) -> None:
    ada, dup = register(hub, "Ada"), register(hub, "Ada L")
    event = call(hub, dup, "c-dup", NOW - DAY)
    hub.execute(m.MergeCustomers(source_id=dup, target_id=ada))
    result = hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=event, reason="dup test"))
    assert result.customer_id == str(dup)
    assert isinstance(list(hub.stream(dup))[-1], Customer.TouchpointVoided)


def test_unknown_customer_or_event_is_refused(hub: Hub) -> None:
    ada, bob = register(hub, "Ada"), register(hub, "Bob")
    bobs = call(hub, bob, "c-bob", NOW - DAY)
    with pytest.raises(CustomerNotFoundError):
        hub.execute(m.VoidTouchpoint(customer_id=uuid4(), event_id=bobs, reason="r"))
    with pytest.raises(TouchpointUnknownError):  # Bob's call is not on Ada's timeline
        hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=bobs, reason="r"))
    registered = next(iter(hub.stream(ada))).event_id  # type: ignore[attr-defined]
    with pytest.raises(TouchpointUnknownError, match="not a touchpoint"):
        hub.execute(m.VoidTouchpoint(customer_id=ada, event_id=registered, reason="r"))


def test_outbound_email_records_and_callbacks_cannot_be_voided() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    c.record(Customer.CallbackRequested, prov(channel="phone"), callback_id="cb1", number=None,
             requested_for=None, reason=None)
    with pytest.raises(InvalidTransitionError, match="cancelled"):
        c.void_touchpoint(prov(), c.pending_events[-1], "mistake",  # type: ignore[arg-type]
                          history=[])
