"""The repository cache hands out deep copies: a copy must share no mutable state."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime
from uuid import uuid4

from domain.customer import Customer, Provenance


def prov(i: int) -> Provenance:
    return Provenance(event_id=uuid4(), occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
                      channel="phone", direction="inbound", actor="t", source_key=f"k{i}",
                      correlation_id="c", causation_id="c")


def test_a_deep_copy_of_a_customer_changes_independently_of_the_original() -> None:
    original = Customer.register(uuid4(), prov(0), name="Ada")
    original.add_contact_point(prov(1), "email", "ada@example.com", None)
    original.record(Customer.CallLogged, prov(2), call_id="c1", from_number=None,
                    to_number=None, queue=None, agent=None, ivr_choices=[], outcome="answered",
                    duration_s=1, wait_s=None, recording_ref=None, summary=None)
    copy = deepcopy(original)
    assert copy.__dict__ == original.__dict__ and copy is not original
    copy.add_contact_point(prov(3), "email", "second@example.com", None)
    copy.record(Customer.CallLogged, prov(4), call_id="c2", from_number=None,
                to_number=None, queue=None, agent=None, ivr_choices=[], outcome="answered",
                duration_s=1, wait_s=None, recording_ref=None, summary=None)
    assert original.contact_points == {"email": ["ada@example.com"]}
    assert original.touch_counts == {"phone": 1} and copy.touch_counts == {"phone": 2}
    assert len(original.pending_events) == 3 and len(copy.pending_events) == 5
    assert original.version == 2 and copy.version == 4
