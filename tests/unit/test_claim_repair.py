"""A contact's claim naming a customer that never appeared (a kill mid-registration).

The counterpart's own prospect is finished at once (see the contract suites);
another customer's claim is left alone while that registration may still be
under way, and taken over by the contact's prospect once stale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from commands import messages as m
from commands.contact_claims import CLAIM_STALE_AFTER_S
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from tests.support.hubs import orphan_claim

NUMBER = "+447700900777"


def in_memory(clock: Callable[[], datetime] | None = None) -> Hub:
    return Hub(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def test_a_claim_of_a_registration_maybe_still_under_way_is_left_alone() -> None:
    hub = in_memory()
    orphan_claim(hub, "phone", NUMBER, owner=uuid4())
    with pytest.raises(CustomerNotFoundError):
        hub.execute(m.LogCall(call_id="c1", from_number=NUMBER))


def test_a_stale_claim_of_a_customer_never_registered_goes_to_the_contacts_prospect() -> None:
    later = datetime.now(UTC) + timedelta(seconds=CLAIM_STALE_AFTER_S + 5)
    hub = in_memory(lambda: later)
    orphan_claim(hub, "phone", NUMBER, owner=uuid4())
    first = hub.execute(m.LogCall(call_id="c1", from_number=NUMBER))
    second = hub.execute(m.LogCall(call_id="c2", from_number=NUMBER))
    prospect = hub.naming.prospect(f"tel:{NUMBER}")
    assert first.customer_id == second.customer_id == str(prospect)
    assert hub.find_by_contact("phone", NUMBER) == prospect


def test_a_customer_named_by_id_is_never_replaced_by_a_prospect() -> None:
    hub = in_memory()
    missing = orphan_claim(hub, "phone", NUMBER)
    with pytest.raises(CustomerNotFoundError):
        hub.execute(m.LogCall(call_id="c1", customer_id=missing, from_number=NUMBER))
