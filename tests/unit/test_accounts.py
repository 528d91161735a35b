"""Accounts: hierarchy without cycles, contact periods on both streams, once per key."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from commands import accounts as a
from commands import messages as m
from commands.hub import Hub
from commands.provenance import source_key
from commands.records import RecordNotFoundError, load
from domain.accounts import (
    MAX_DEPTH,
    AccountCycleError,
    AccountLinkJoined,
    AccountLinkLeft,
    AccountRuleError,
    check_join,
    check_parent,
)
from domain.errors import CustomerMergedError
from tests.support.hubs import make_hub

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
T1 = datetime(2026, 6, 30, 17, tzinfo=UTC)
T2 = datetime(2026, 7, 1, 9, tzinfo=UTC)


def test_a_parent_below_the_account_or_too_deep_is_refused() -> None:
    check_parent("a", None, [])
    check_parent("a", "b", ["b", "c"])
    with pytest.raises(AccountCycleError, match="own parent"):
        check_parent("a", "a", [])
    with pytest.raises(AccountCycleError, match="cycle"):
        check_parent("a", "c", ["c", "b", "a"])
    with pytest.raises(AccountCycleError, match="levels"):
        check_parent("a", "p0", [f"p{i}" for i in range(MAX_DEPTH)])


def test_periods_of_one_person_on_one_account_never_overlap() -> None:
    links = {"l1": {"customer_id": "p", "role": "buyer", "joined_at": T0.isoformat(),
                    "left_at": None}}
    with pytest.raises(AccountRuleError, match="already acts"):
        check_join(links, "p", T2)
    check_join(links, "q", T0)  # someone else
    links["l1"]["left_at"] = T1.isoformat()
    with pytest.raises(AccountRuleError, match="cannot start before"):
        check_join(links, "p", T0)
    check_join(links, "p", T2)


@pytest.fixture
def hub(sqlite_env: dict[str, str]) -> Hub:
    return make_hub(sqlite_env)


def _person(hub: Hub, name: str = "Ada") -> UUID:
    cid = uuid4()
    hub.register_customer(m.RegisterCustomer(customer_id=cid, name=name))
    return cid


def _account(hub: Hub, name: str, parent: UUID | None = None) -> UUID:
    done = hub.execute(a.OpenAccount(name=name, parent_id=parent, source_key=f"open:{name}"))
    return UUID(done.customer_id)


def test_opening_an_account_twice_under_one_key_opens_it_once(hub: Hub) -> None:
    first = hub.execute(a.OpenAccount(name="Acme", vat_number="GB 980 7806 84",
                                      source_key="k1"))
    again = hub.execute(a.OpenAccount(name="Acme", vat_number="GB 980 7806 84",
                                      source_key="k1"))
    assert again.duplicate and again.customer_id == first.customer_id
    acme = load(hub.context, "account", UUID(first.customer_id))
    assert acme.vat_number == "GB980780684" and acme.name == "Acme"


def test_a_cycle_in_the_hierarchy_is_refused(hub: Hub) -> None:
    group = _account(hub, "Group")
    sub = _account(hub, "Sub", parent=group)
    site = _account(hub, "Site", parent=sub)
    with pytest.raises(AccountCycleError):
        hub.execute(a.SetAccountParent(account_id=group, parent_id=site))
    hub.execute(a.SetAccountParent(account_id=site, parent_id=group))  # re-hang: fine
    assert load(hub.context, "account", site).parent_id == str(group)
    with pytest.raises(RecordNotFoundError):
        hub.execute(a.SetAccountParent(account_id=site, parent_id=uuid4()))


def test_bad_vat_numbers_and_postcodes_are_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="not a valid VAT number"):
        a.OpenAccount(name="X", vat_number="GB123456789")
    with pytest.raises(ValidationError, match="not a postcode of GB"):
        a.OpenAccount(name="X", addresses=[{"postcode": "123456", "country": "GB"}])
    ok = a.OpenAccount(name="X", addresses=[{"postcode": "sw1a  1aa", "country": "gb"}])
    assert ok.account_fields()["addresses"][0]["postcode"] == "SW1A 1AA"


def test_a_link_is_on_both_streams_once(hub: Hub) -> None:
    acme = _account(hub, "Acme")
    ada = _person(hub)
    cmd = a.LinkContact(account_id=acme, customer_id=ada, role="buyer", joined_at=T0,
                        source_key="link-1")
    first = hub.execute(cmd)
    again = hub.execute(cmd)
    assert not first.duplicate and again.duplicate and len(first.event_ids) == 2
    account = load(hub.context, "account", acme)
    (link_id, link), = account.links.items()
    assert link == {"customer_id": str(ada), "role": "buyer", "joined_at": T0.isoformat(),
                    "left_at": None}
    assert hub.customer(ada).area("accounts")[link_id]["account_id"] == str(acme)
    joined = [e for e in hub.stream(ada) if isinstance(e, AccountLinkJoined)]
    assert len(joined) == 1 and joined[0].joined_at == T0


def test_a_crash_between_the_two_saves_is_completed_by_a_retry(hub: Hub) -> None:
    acme = _account(hub, "Acme")
    ada = _person(hub)
    cmd = a.LinkContact(account_id=acme, customer_id=ada, role="buyer", source_key="link-2")
    a.link_on_account(hub.context, cmd, source_key(cmd))  # ... and the process stops here
    assert hub.customer(ada).area("accounts") == {}
    done = hub.execute(cmd)
    assert not done.duplicate
    assert len(hub.customer(ada).area("accounts")) == 1
    assert hub.execute(cmd).duplicate
    assert len(load(hub.context, "account", acme).links) == 1


def test_a_move_ends_one_period_and_starts_another(hub: Hub) -> None:
    acme, globex = _account(hub, "Acme"), _account(hub, "Globex")
    ada = _person(hub)
    hub.execute(a.LinkContact(account_id=acme, customer_id=ada, joined_at=T0, source_key="j"))
    move = a.MoveContact(customer_id=ada, from_account_id=acme, to_account_id=globex,
                         role="technical", moved_at=T2, source_key="mv")
    hub.execute(move)
    assert hub.execute(move).duplicate
    left = [e for e in hub.stream(ada) if isinstance(e, AccountLinkLeft)]
    assert len(left) == 1 and left[0].left_at == T2 and left[0].account_id == str(acme)
    periods = {v["account_id"]: (v["joined_at"], v["left_at"])
               for v in hub.customer(ada).area("accounts").values()}
    assert periods == {str(acme): (T0.isoformat(), T2.isoformat()),
                       str(globex): (T2.isoformat(), None)}
    with pytest.raises(AccountRuleError, match="does not act"):
        hub.execute(a.UnlinkContact(account_id=acme, customer_id=ada, left_at=T2))
    with pytest.raises(RecordNotFoundError):  # refused before leaving anything
        hub.execute(a.MoveContact(customer_id=ada, from_account_id=globex,
                                  to_account_id=uuid4(), moved_at=T2 + (T2 - T0)))
    assert hub.customer(ada).area("accounts")  # still acting for Globex
    assert all(v["left_at"] is None for v in hub.customer(ada).area("accounts").values()
               if v["account_id"] == str(globex))


def test_a_merged_person_is_refused_before_the_account_records_anything(hub: Hub) -> None:
    acme = _account(hub, "Acme")
    dup, ada = _person(hub, "Ada L"), _person(hub)
    hub.merge_customers(m.MergeCustomers(source_id=dup, target_id=ada))
    with pytest.raises(CustomerMergedError):
        hub.execute(a.LinkContact(account_id=acme, customer_id=dup))
    assert load(hub.context, "account", acme).links == {}
