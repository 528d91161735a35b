"""One plain touchpoint per command is saved as its row, on a copy of the cached customer.

``PlainTouchpoints.record`` builds the row on ``Customer.touch_copy`` (not a deep
copy) and saves it through ``CustomerStore.save_built``; anything it does not
decide goes to the domain path from the start. The command never changes the
cached customer itself, so a save that fails leaves nothing behind in the cache; a
stale cache loses the race on the stream's version, is dropped (so the library's
load reads the store rather than fast-forwarding it in place), and the command
still lands once.
(That the row's bytes are the domain path's: ``test_bulk_rows``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from commands import messages as m
from commands.errors import CustomerNotFoundError
from commands.hub import Hub
from domain.customer import Customer
from domain.errors import FutureOccurrenceError
from tests.support.demo import T0
from tests.support.hubs import make_hub

CID = UUID("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(sqlite_env)
    h.execute(m.RegisterCustomer(customer_id=CID, name="Ada", source_key="reg:ada",
                                 occurred_at=T0))
    yield h
    h.close()


def _call(call_id: str, **extra: Any) -> m.LogCall:
    return m.LogCall(customer_id=CID, call_id=call_id, occurred_at=T0 + timedelta(hours=1),
                     duration_s=60, **extra)


def _cached(hub: Hub, customer_id: UUID = CID) -> Customer:
    found = hub.repository.cache.get(hub.naming.customer(customer_id))  # type: ignore[union-attr]
    assert isinstance(found, Customer)
    return found


def _count_built(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many saves went through ``save_built`` (the plain path)."""
    store = hub.context.store
    calls: list[int] = []
    save_built = store.save_built

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return save_built(*args, **kwargs)

    monkeypatch.setattr(store, "save_built", counted)
    return calls


def test_a_plain_touchpoint_is_saved_as_its_row_and_leaves_the_cached_customer_unchanged(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = _count_built(hub, monkeypatch)
    before = _cached(hub)
    state = deepcopy(before.__dict__)
    first = hub.execute(_call("c1"))
    assert built == [1] and not first.duplicate
    assert before.__dict__ == state  # the copy was advanced, never the cached customer
    after = _cached(hub)
    assert after is not before and after.version == first.versions[0] == before.version + 1
    assert after.touch_counts == {"phone": 1}
    stored = hub.customer(CID)  # replayed from the store (fast-forwarded if the cache lied)
    assert (stored.version, stored.touch_counts, stored.last_contact) == (
        after.version, after.touch_counts, after.last_contact)
    again = hub.execute(_call("c1"))
    assert again.duplicate and (again.event_ids, again.versions, again.positions) == (
        first.event_ids, first.versions, first.positions)
    assert len(list(hub.stream(CID))) == 2


def test_a_stale_cache_loses_on_the_version_and_the_command_still_lands_once(
    hub: Hub, sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.execute(_call("c1"))
    other = make_hub(sqlite_env)  # another process on the same store
    try:
        other.execute(_call("c2"))
    finally:
        other.close()
    built = _count_built(hub, monkeypatch)
    stale = _cached(hub)
    state = deepcopy(stale.__dict__)
    recorded = hub.execute(_call("c3"))
    assert built == [1]  # tried as a row, lost on the version, then the domain path
    assert stale.__dict__ == state
    assert recorded.versions == [stale.version + 2]
    assert [e.call_id for e in hub.stream(CID) if isinstance(e, Customer.CallLogged)] == [
        "c1", "c2", "c3"]
    assert _cached(hub).touch_counts == {"phone": 3}


def test_what_the_row_path_does_not_decide_goes_to_the_domain_path(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.execute(_call("c1"))
    built = _count_built(hub, monkeypatch)
    ahead = m.LogCall(customer_id=CID, call_id="c2", occurred_at=hub.clock() + timedelta(days=9))
    with pytest.raises(FutureOccurrenceError):
        hub.execute(ahead)
    hub.execute(m.AssignPartner(customer_id=CID, partner_id="p-1", source_key="partner:1"))
    with pytest.raises(CustomerNotFoundError):
        hub.execute(_call("c3").for_partner("p-2"))
    assert hub.execute(_call("c4").for_partner("p-1")).versions == [_cached(hub).version]
    target = UUID(hub.execute(m.RegisterCustomer(name="Ada L", source_key="reg:ada2")).customer_id)
    hub.execute(m.MergeCustomers(source_id=CID, target_id=target))
    moved = hub.execute(_call("c5"))
    assert moved.customer_id == str(target)  # the merge followed, as ever
    assert built == [1]  # only c4: the refusals and the merged customer went the domain way
    assert [e.call_id for e in hub.stream(target) if isinstance(e, Customer.CallLogged)] == [
        "c5"]
