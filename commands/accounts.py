"""Commands on accounts and their contact links: load -> decide -> save, once per source key.

A contact link is recorded on two streams, the account's and the person's,
each under its own source key derived from the command's key (``<key>|account``
and ``<key>|contact``). The account side goes first (its rules: no overlapping
periods, an open period to end); the person's side follows. If the process
stops between the two saves, running the same command again finds the
account's event already recorded (a duplicate, answered from the account's
own state) and completes the person's side — ``link_contact`` is the two
steps ``link_on_account`` and ``link_on_contact`` in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from commands import messages as m
from commands.context import WriteContext
from commands.handling import on_customer
from commands.ports import Recorded
from commands.provenance import source_key
from commands.records import RecordNotFoundError, RecordProvenance, load, on_record
from commands.validation import normalise_postcode, normalise_vat
from domain.accounts import (
    MAX_DEPTH,
    Account,
    AccountLinkJoined,
    AccountLinkLeft,
    AccountRuleError,
    check_join,
)
from domain.customer import Customer, Provenance
from domain.errors import CustomerErasedError, CustomerMergedError

KIND = "account"
Size = Literal["1-9", "10-49", "50-249", "250-999", "1000+"]
Role = Literal["decision-maker", "buyer", "technical", "billing", "user", "other"]


class AddressIn(BaseModel):
    """A company address (a legal entity's, not a person's)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    kind: Literal["registered", "billing", "site", "delivery"] = "registered"
    street: m.Short | None = None
    city: m.Short | None = None
    postcode: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]

    @model_validator(mode="after")
    def _postcode(self) -> AddressIn:
        """The country upper-cased, the postcode checked and in the country's normal form."""
        object.__setattr__(self, "country", self.country.upper())
        if self.postcode:
            object.__setattr__(self, "postcode", normalise_postcode(self.postcode, self.country))
        return self

    def checked(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class _AccountFields(m.Command):
    name: m.Short | None = None
    vat_number: Annotated[str, Field(max_length=40)] | None = Field(
        default=None, description="VAT number with its country prefix (checked: python-stdnum).")
    company_number: Annotated[str, Field(max_length=40)] | None = None
    industry: Annotated[str, Field(max_length=100)] | None = None
    size: Size | None = None
    addresses: Annotated[list[AddressIn], Field(max_length=20)] | None = None
    owner: Annotated[str, Field(max_length=100)] | None = Field(
        default=None, description="Staff member responsible for the account.")

    @field_validator("vat_number")
    @classmethod
    def _vat(cls, value: str | None) -> str | None:
        return None if value is None else normalise_vat(value)

    def account_fields(self) -> dict[str, Any]:
        """The descriptive fields this command sets (addresses checked)."""
        wanted = self.model_fields_set & {"name", "vat_number", "company_number", "industry",
                                          "size", "addresses", "owner"}
        fields = {k: getattr(self, k) for k in wanted}
        if "addresses" in fields:
            fields["addresses"] = [a.checked() for a in fields["addresses"] or ()]
        return fields


class OpenAccount(_AccountFields):
    kind: Literal["open-account"] = "open-account"
    account_id: UUID | None = Field(default=None, description="Chosen by the caller, or derived "
                                    "from the source key (a retry opens the same account).")
    name: m.Short
    parent_id: UUID | None = None
    partner_id: m.Short | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Analytical Engines Ltd", "vat_number": "GB 980 7806 84",
        "industry": "manufacturing", "size": "50-249", "owner": "mia",
        "addresses": [{"kind": "registered", "street": "1 Engine Row", "city": "London",
                       "postcode": "sw1a 1aa", "country": "GB"}],
        "source_key": "crm-import:account:7"}]})


class ChangeAccount(_AccountFields):
    kind: Literal["change-account"] = "change-account"
    account_id: UUID

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10", "size": "250-999",
        "owner": "jonas"}]})


class SetAccountParent(m.Command):
    kind: Literal["account-parent"] = "account-parent"
    account_id: UUID
    parent_id: UUID | None = Field(description="The parent account, or null for a top account.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10",
        "parent_id": "6f1c1d8e-2a77-4d6b-a0f6-0e2f3f6b9a11"}]})


class AssignAccountPartner(m.Command):
    kind: Literal["account-partner"] = "account-partner"
    account_id: UUID
    partner_id: m.Short | None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10", "partner_id": "broker-7"}]})


class LinkContact(m.Command):
    """A person begins to act for an account (from ``joined_at``, default: now)."""

    kind: Literal["link-contact"] = "link-contact"
    account_id: UUID
    customer_id: UUID
    role: Role = "other"
    joined_at: m.AwareDatetime | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10",
        "customer_id": "4f6c4a3e-8d1b-4c55-9b0e-1f2a3b4c5d6e", "role": "buyer",
        "joined_at": "2026-01-05T09:00:00+00:00"}]})


class UnlinkContact(m.Command):
    """A person stops acting for an account (at ``left_at``, default: now)."""

    kind: Literal["unlink-contact"] = "unlink-contact"
    account_id: UUID
    customer_id: UUID
    left_at: m.AwareDatetime | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10",
        "customer_id": "4f6c4a3e-8d1b-4c55-9b0e-1f2a3b4c5d6e",
        "left_at": "2026-06-30T17:00:00+00:00"}]})


class MoveContact(m.Command):
    """A person leaves one account and joins another at the same moment."""

    kind: Literal["move-contact"] = "move-contact"
    customer_id: UUID
    from_account_id: UUID
    to_account_id: UUID
    role: Role = "other"
    moved_at: m.AwareDatetime | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "4f6c4a3e-8d1b-4c55-9b0e-1f2a3b4c5d6e",
        "from_account_id": "0b0d4b8e-5f59-4a57-9a4e-3d1a6a7c2f10",
        "to_account_id": "6f1c1d8e-2a77-4d6b-a0f6-0e2f3f6b9a11", "role": "buyer",
        "moved_at": "2026-07-01T09:00:00+00:00"}]})


# ------------------------------------------------------------------ handlers

def _keyed(cmd: m.Command, key: str, part: str) -> m.Command:
    """``cmd`` under the source key of one of its steps (derived from the command's key)."""
    return cmd.model_copy(update={"source_key": f"{key}|{part}"})


def _one(provs: Iterator[RecordProvenance]) -> dict[str, Any]:
    return next(provs).fields()


def open_account(w: WriteContext, cmd: OpenAccount) -> Recorded:
    key = source_key(cmd)
    account_id = cmd.account_id or w.naming.uuid_for(f"account|{key}")
    ancestry = _ancestry(w, str(cmd.parent_id)) if cmd.parent_id else []

    def decide(account: Account | None, provs: Iterator[RecordProvenance]) -> Account:
        if account is not None:
            raise AccountRuleError(f"account {account_id} exists already")
        fields = cmd.account_fields()
        opened = Account.open(account_id, _one(provs), stream=w.naming.record(KIND, account_id),
                              **fields)
        if cmd.parent_id is not None:
            opened.set_parent(_one(provs), str(cmd.parent_id), ancestry)
        if cmd.partner_id is not None:
            opened.assign_partner(_one(provs), cmd.partner_id)
        return opened

    return on_record(w, KIND, account_id, cmd, decide)


def change_account(w: WriteContext, cmd: ChangeAccount) -> Recorded:
    return on_record(w, KIND, cmd.account_id, cmd,
                     lambda a, p: _changed(a, cmd.account_id, lambda acc: acc.change(
                         _one(p), cmd.account_fields())))


def set_parent(w: WriteContext, cmd: SetAccountParent) -> Recorded:
    ancestry = _ancestry(w, str(cmd.parent_id)) if cmd.parent_id else []
    parent = str(cmd.parent_id) if cmd.parent_id else None
    return on_record(w, KIND, cmd.account_id, cmd,
                     lambda a, p: _changed(a, cmd.account_id, lambda acc: acc.set_parent(
                         _one(p), parent, ancestry)))


def assign_partner(w: WriteContext, cmd: AssignAccountPartner) -> Recorded:
    return on_record(w, KIND, cmd.account_id, cmd,
                     lambda a, p: _changed(a, cmd.account_id, lambda acc: acc.assign_partner(
                         _one(p), cmd.partner_id)))


def _changed(account: Account | None, account_id: UUID,
             change: Callable[[Account], Any]) -> Account:
    if account is None:
        raise RecordNotFoundError(f"no account {account_id}")
    change(account)
    return account


def _ancestry(w: WriteContext, parent_id: str) -> list[str]:
    """The proposed parent and its ancestors, loaded one by one (at most ``MAX_DEPTH``)."""
    chain: list[str] = []
    current: str | None = parent_id
    while current is not None and len(chain) < MAX_DEPTH:
        chain.append(current)
        current = load(w, KIND, UUID(current)).parent_id
    if current is not None:
        chain.append(current)  # one more than allowed: the rule refuses the depth
    return chain


# -- contact links: two streams, one command --------------------------------------

def link_id_for(w: WriteContext, key: str) -> str:
    return str(w.naming.uuid_for(f"account-link|{key}"))


def link_on_account(w: WriteContext, cmd: LinkContact, key: str) -> Recorded:
    """The account's half of a link (step 1)."""
    _check_person(w, cmd.customer_id)
    joined = cmd.joined_at or cmd.occurred_at or w.clock()
    return on_record(w, KIND, cmd.account_id, _keyed(cmd, key, "account"),
                     lambda a, p: _changed(a, cmd.account_id, lambda acc: acc.join(
                         _one(p), link_id_for(w, key), str(cmd.customer_id), cmd.role, joined)))


def _check_person(w: WriteContext, customer_id: UUID) -> None:
    """A merged or erased person is refused before the account records anything."""
    person = w.store.load(customer_id)
    if person.merged_into is not None:
        raise CustomerMergedError(customer_id, person.merged_into)
    if person.erased:
        raise CustomerErasedError(f"customer {customer_id} was erased")


def link_on_contact(w: WriteContext, cmd: LinkContact, key: str) -> Recorded:
    """The person's half of a link (step 2), from what the account recorded."""
    account = load(w, KIND, cmd.account_id)
    link_id = link_id_for(w, key)
    link = account.links[link_id]

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        customer.record_business(AccountLinkJoined, next(provs), link_id=link_id,
                                 account_id=str(cmd.account_id), role=link["role"],
                                 joined_at=datetime.fromisoformat(link["joined_at"]))

    part = _keyed(cmd, key, "contact")
    return on_customer(w, cmd.customer_id, source_key(part), decide, part, follow_merge=False)


def link_contact(w: WriteContext, cmd: LinkContact) -> Recorded:
    key = source_key(cmd)
    first = link_on_account(w, cmd, key)
    second = link_on_contact(w, cmd, key)
    return _both(first, second)


def unlink_on_account(w: WriteContext, cmd: UnlinkContact, key: str) -> Recorded:
    left = cmd.left_at or cmd.occurred_at or w.clock()
    return on_record(w, KIND, cmd.account_id, _keyed(cmd, key, "account"),
                     lambda a, p: _changed(a, cmd.account_id, lambda acc: acc.leave(
                         _one(p), str(cmd.customer_id), left)))


def unlink_on_contact(w: WriteContext, cmd: UnlinkContact, key: str) -> Recorded:
    account = load(w, KIND, cmd.account_id)
    digest = w.naming.digest(source_key(_keyed(cmd, key, "account")))
    version = account.__dict__["key_digests"][digest]
    link_id, link = next((i, li) for i, li in account.links.items()
                         if li["customer_id"] == str(cmd.customer_id) and li["left_at"]
                         and _left_at_version(account, i) == version)

    def decide(customer: Customer, provs: Iterator[Provenance]) -> None:
        customer.record_business(AccountLinkLeft, next(provs), link_id=link_id,
                                 account_id=str(cmd.account_id),
                                 left_at=datetime.fromisoformat(link["left_at"]))

    part = _keyed(cmd, key, "contact")
    return on_customer(w, cmd.customer_id, source_key(part), decide, part, follow_merge=False)


def _left_at_version(account: Account, link_id: str) -> int | None:
    return account.__dict__.get("left_versions", {}).get(link_id)


def unlink_contact(w: WriteContext, cmd: UnlinkContact) -> Recorded:
    key = source_key(cmd)
    first = unlink_on_account(w, cmd, key)
    second = unlink_on_contact(w, cmd, key)
    return _both(first, second)


def move_contact(w: WriteContext, cmd: MoveContact) -> Recorded:
    """Leave ``from`` and join ``to`` at one moment (each step idempotent under its key);
    a join the target account would refuse is refused before the person leaves anything."""
    key = source_key(cmd)
    moved = cmd.moved_at or cmd.occurred_at or w.clock()
    common = {"actor": cmd.actor, "correlation_id": cmd.correlation_id or key,
              "causation_id": cmd.causation_id, "occurred_at": cmd.occurred_at}
    leave = UnlinkContact(account_id=cmd.from_account_id, customer_id=cmd.customer_id,
                          left_at=moved, source_key=f"{key}|leave", **common)
    join = LinkContact(account_id=cmd.to_account_id, customer_id=cmd.customer_id,
                       role=cmd.role, joined_at=moved, source_key=f"{key}|join", **common)
    target = load(w, KIND, cmd.to_account_id)
    joined_key = source_key(_keyed(join, source_key(join), "account"))
    if not target.recorded(w.naming.digest(joined_key)):
        check_join(target.links, str(cmd.customer_id), moved)
    return _both(unlink_contact(w, leave), link_contact(w, join))


def _both(first: Recorded, second: Recorded) -> Recorded:
    return Recorded(customer_id=second.customer_id,
                    event_ids=[*first.event_ids, *second.event_ids],
                    versions=[*first.versions, *second.versions],
                    positions=[*first.positions, *second.positions],
                    duplicate=first.duplicate and second.duplicate)


HANDLERS: dict[type, Callable[[Any, Any], Recorded]] = {
    OpenAccount: lambda hub, cmd: open_account(hub.context, cmd),
    ChangeAccount: lambda hub, cmd: change_account(hub.context, cmd),
    SetAccountParent: lambda hub, cmd: set_parent(hub.context, cmd),
    AssignAccountPartner: lambda hub, cmd: assign_partner(hub.context, cmd),
    LinkContact: lambda hub, cmd: link_contact(hub.context, cmd),
    UnlinkContact: lambda hub, cmd: unlink_contact(hub.context, cmd),
    MoveContact: lambda hub, cmd: move_contact(hub.context, cmd),
}
