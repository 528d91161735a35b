"""The customer aggregate, given/when/then on its collected events."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.customer import Customer, Provenance
from domain.errors import CustomerMergedError, InvalidTransitionError

T0 = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)


def prov(key: str = "k", channel: str = "system") -> Provenance:
    return Provenance(uuid4(), T0, channel, "internal", "tester", key, key, key)


def test_registration_then_lifecycle_moves_forward() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    c.change_lifecycle_stage(prov(), "target", None)
    c.change_lifecycle_stage(prov(), "current", "first order")
    assert [type(e).__name__ for e in c.collect_events()] == [
        "Registered", "LifecycleStageChanged", "LifecycleStageChanged"]
    with pytest.raises(InvalidTransitionError):
        c.change_lifecycle_stage(prov(), "prospect", None)


def test_naive_timestamps_are_refused() -> None:
    naive = Provenance(uuid4(), datetime(2025, 1, 1), "phone", "inbound", "a", "k", "k", "k")
    with pytest.raises(ValueError, match="timezone"):
        Customer.register(uuid4(), naive, name="Ada")


def test_merged_customer_refuses_new_touchpoints() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    c.merge_into(prov(), str(uuid4()))
    with pytest.raises(CustomerMergedError):
        c.add_note(prov(), "after the merge")


def test_only_touchpoint_events_can_be_recorded_as_touchpoints() -> None:
    c = Customer.register(uuid4(), prov(), name="Ada")
    with pytest.raises(TypeError):
        c.record(Customer.MergedInto, prov(), target_id="x")


def test_v1_call_events_are_upcast_when_old_streams_load() -> None:
    """CallLogged v1 stored ``duration`` and had no wait time or IVR choices."""
    app: Application = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    customer = Customer.register(uuid4(), prov(), name="Ada")
    app.save(customer)
    v1_state = {
        "originator_id": customer.id, "originator_version": 1, "timestamp": T0,
        "event_id": uuid4(), "occurred_at": T0, "channel": "phone", "direction": "inbound",
        "actor": "pbx", "source_key": "call:old", "correlation_id": "c", "causation_id": "c",
        "call_id": "old", "from_number": "+442079460018", "to_number": None, "queue": None,
        "agent": None, "outcome": "answered", "duration": 95, "recording_ref": None,
        "summary": None,
    }
    stored = StoredEvent(
        originator_id=customer.id, originator_version=1,
        topic=get_topic(Customer.CallLogged),
        state=app.mapper.transcoder.encode(v1_state),
    )
    app.recorder.insert_events([stored])
    loaded = list(app.events.get(customer.id))[-1]
    assert isinstance(loaded, Customer.CallLogged)
    assert loaded.duration_s == 95 and loaded.wait_s is None and loaded.ivr_choices == []
    assert app.repository.get(customer.id).touch_counts == {"phone": 1}
