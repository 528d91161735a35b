"""Accounts (companies) and the people who act for them.

An ``Account`` is a legal entity with its own stream (``account-<uuid>``): its
name, legal identifiers, industry, size, addresses, parent account, owner and
partner. It holds **no personal data** — a person's data stays on their own
customer stream, encrypted under their key — so the account's stream carries
only the contact's customer id, a role code and the period's dates.

A *contact link* is a period in which a customer acted for an account, with a
role: joined at one moment, left at a later one (a move is a leave and a join
at the same moment). Both streams record it: the account (``ContactJoined``,
``ContactLeft``) and the person (``AccountLinkJoined``, ``AccountLinkLeft``,
business events of the customer's stream). Periods of one person on one
account never overlap; a person may act for several accounts at once.

The hierarchy: an account's parent must exist and must not be the account
itself or one of its descendants (a cycle). The check walks the proposed
parent's ancestry as loaded by the command (``check_parent``), up to
``MAX_DEPTH`` levels: a deeper tree is refused too, so the walk is bounded.

Rules are pure functions of the state and the arguments (no clock, no I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.customer import Customer
from domain.errors import DomainError
from domain.records import Record

#: Levels an account tree may have (a group, its subsidiaries, their sites…).
MAX_DEPTH = 8
SIZES = ("1-9", "10-49", "50-249", "250-999", "1000+")
ROLES = ("decision-maker", "buyer", "technical", "billing", "user", "other")
ADDRESS_KINDS = ("registered", "billing", "site", "delivery")


class AccountRuleError(DomainError):
    """Raised when an account change breaks a rule (hierarchy, contact periods, closed)."""


class AccountCycleError(AccountRuleError):
    """Raised when a parent would make an account its own ancestor, or the tree too deep."""


def check_parent(account_id: str, parent_id: str | None, ancestry: Sequence[str]) -> None:
    """Refuse a parent that would close a cycle or make the tree deeper than ``MAX_DEPTH``.

    ``ancestry`` is the proposed parent's chain upwards as loaded: the parent, its
    parent, … (the walk stops at ``MAX_DEPTH``; a longer chain is refused)."""
    if parent_id is None:
        return
    if parent_id == account_id:
        raise AccountCycleError(f"account {account_id} cannot be its own parent")
    if account_id in ancestry:
        raise AccountCycleError(
            f"account {parent_id} is below {account_id}: making it the parent would close a cycle")
    if len(ancestry) >= MAX_DEPTH:
        raise AccountCycleError(f"an account tree may have at most {MAX_DEPTH} levels")


def check_join(links: dict[str, dict[str, Any]], customer_id: str, joined_at: datetime) -> None:
    """A person joins an account only outside their other periods on it."""
    for link in links.values():
        if link["customer_id"] != customer_id:
            continue
        if link["left_at"] is None:
            raise AccountRuleError(
                f"customer {customer_id} already acts for this account since {link['joined_at']}")
        if joined_at.isoformat() < link["left_at"]:
            raise AccountRuleError(
                f"customer {customer_id} left this account at {link['left_at']}: a new period "
                "cannot start before that")


def open_link(links: dict[str, dict[str, Any]], customer_id: str) -> str | None:
    """The link id of the person's current period on the account, if any."""
    for link_id, link in links.items():
        if link["customer_id"] == customer_id and link["left_at"] is None:
            return link_id
    return None


def check_leave(link: dict[str, Any], left_at: datetime) -> None:
    if left_at.isoformat() <= link["joined_at"]:
        raise AccountRuleError(f"a period that began at {link['joined_at']} cannot end at "
                               f"{left_at.isoformat()}")


class Account(Record):
    """A company: its own stream, no personal data."""

    class Opened(Record.Created):
        name: str
        vat_number: str | None
        company_number: str | None
        industry: str | None
        size: str | None
        addresses: list[dict[str, str]]
        owner: str | None

    class Changed(Record.Event):
        """Changed descriptive fields (name, identifiers, industry, size, addresses, owner)."""

        changes: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.__dict__.update(self.changes)

    class ParentSet(Record.Event):
        parent_id: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.parent_id = self.parent_id

    class PartnerAssigned(Record.Event):
        partner_id: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.partner_id = self.partner_id

    class ContactJoined(Record.Event):
        link_id: str
        customer_id: str
        role: str
        joined_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.links[self.link_id] = {
                "customer_id": self.customer_id, "role": self.role,
                "joined_at": self.joined_at.isoformat(), "left_at": None}

    class ContactLeft(Record.Event):
        link_id: str
        customer_id: str
        left_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.links[self.link_id]["left_at"] = self.left_at.isoformat()
            aggregate.__dict__.setdefault("left_versions", {})[self.link_id] = (
                self.originator_version)

    def __init__(self, name: str, vat_number: str | None, company_number: str | None,
                 industry: str | None, size: str | None, addresses: list[dict[str, str]],
                 owner: str | None, **_: Any) -> None:
        self.name = name
        self.vat_number = vat_number
        self.company_number = company_number
        self.industry = industry
        self.size = size
        self.addresses = addresses
        self.owner = owner
        self.parent_id: str | None = None
        self.partner_id: str | None = None
        self.links: dict[str, dict[str, Any]] = {}

    @property
    def account_id(self) -> str:
        return str(self.id).removeprefix("account-")

    # -- decisions -----------------------------------------------------------
    @classmethod
    def open(cls, account_id: UUID, prov: dict[str, Any], *, name: str,
             vat_number: str | None = None, company_number: str | None = None,
             industry: str | None = None, size: str | None = None,
             addresses: Sequence[dict[str, str]] = (), owner: str | None = None,
             stream: UUID | str | None = None) -> Account:
        if size is not None and size not in SIZES:
            raise AccountRuleError(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")
        return cls._create(cls.Opened, id=stream or account_id, name=name, vat_number=vat_number,
                           company_number=company_number, industry=industry, size=size,
                           addresses=[dict(a) for a in addresses], owner=owner, **prov)

    def change(self, prov: dict[str, Any], changes: dict[str, Any]) -> None:
        if changes.get("size") is not None and changes["size"] not in SIZES:
            raise AccountRuleError(f"unknown size {changes['size']!r}")
        changed = {k: v for k, v in changes.items() if getattr(self, k, None) != v}
        if changed:
            self.trigger_event(self.Changed, changes=changed, **prov)

    def set_parent(self, prov: dict[str, Any], parent_id: str | None,
                   ancestry: Sequence[str]) -> None:
        check_parent(self.account_id, parent_id, ancestry)
        if parent_id != self.parent_id:
            self.trigger_event(self.ParentSet, parent_id=parent_id, **prov)

    def assign_partner(self, prov: dict[str, Any], partner_id: str | None) -> None:
        if partner_id != self.partner_id:
            self.trigger_event(self.PartnerAssigned, partner_id=partner_id, **prov)

    def join(self, prov: dict[str, Any], link_id: str, customer_id: str, role: str,
             joined_at: datetime) -> None:
        if role not in ROLES:
            raise AccountRuleError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        check_join(self.links, customer_id, joined_at)
        self.trigger_event(self.ContactJoined, link_id=link_id, customer_id=customer_id,
                           role=role, joined_at=joined_at, **prov)

    def leave(self, prov: dict[str, Any], customer_id: str, left_at: datetime) -> str:
        """End the person's current period; the link id it ended."""
        link_id = open_link(self.links, customer_id)
        if link_id is None:
            raise AccountRuleError(f"customer {customer_id} does not act for account "
                                   f"{self.account_id} now")
        check_leave(self.links[link_id], left_at)
        self.trigger_event(self.ContactLeft, link_id=link_id, customer_id=customer_id,
                           left_at=left_at, **prov)
        return link_id


# -- the person's side: business events of the customer's stream ---------------

class AccountLinkJoined(Customer.BusinessEvent):
    """The customer began to act for an account (role code, from ``joined_at``)."""

    link_id: str
    account_id: str
    role: str
    joined_at: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.area("accounts")[self.link_id] = {
            "account_id": self.account_id, "role": self.role,
            "joined_at": self.joined_at.isoformat(), "left_at": None}


class AccountLinkLeft(Customer.BusinessEvent):
    """The customer stopped acting for an account at ``left_at``."""

    link_id: str
    account_id: str
    left_at: datetime

    def apply(self, aggregate: Any) -> None:
        link = aggregate.area("accounts").get(self.link_id)
        if link is not None:
            link["left_at"] = self.left_at.isoformat()
