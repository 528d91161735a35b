"""Demo accounts: one per company the demo customers work for, groups with their
subsidiaries, contacts linked and some moving between accounts, planted duplicates
(customers and accounts), and a few contact points proved unusable.

Deterministic like the rest of the demo: every key depends on the seed and the
company or customer it is about, never on how many customers the plan has, so
a smaller plan's keys are a subset of a larger one's. ``planted_pairs`` says
which duplicate pairs were planted (the data-quality test checks that the
suggestions are exactly these).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from commands import accounts as a
from commands import messages as m
from commands.email_messages import RecordEmailBounce
from commands.hub import NAMESPACE

_AREAS = ["LS", "M", "B", "BS", "G", "EH", "NE", "CF", "S", "L"]
_ROLES = ["decision-maker", "buyer", "technical", "billing", "user"]
_OWNERS = ["mia", "omar", "lena", "raj"]


def account_id(seed: int, name: str) -> UUID:
    return uuid5(NAMESPACE, f"demo-account:{seed}:{name}")


def _gb_vat(k: int) -> str:
    """A GB VAT number that passes the check digits (weights 8…2, sum + check ≡ 0 mod 97)."""
    base = f"{(1_000_000 + k * 7919) % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(base, range(8, 1, -1), strict=True))
    return f"GB{base}{(-total) % 97:02d}"


def _postcode(k: int) -> str:
    return f"{_AREAS[k % 10]}{1 + (k // 10) % 9} {k % 10}AB"


def _variant(name: str) -> str:
    """The same person's name as a second system typed it (one letter doubled)."""
    first, _, last = name.partition(" ")
    cut = max(1, len(last) - 2)
    return f"{first} {last[:cut]}{last[cut - 1]}{last[cut:]}"


def extend(plan: Any, people: list[Any], companies: list[str], suffixes: list[str], seed: int,
           years: int, until: datetime) -> None:
    """Append the accounts part of the demo to ``plan.commands`` (after the customers)."""
    opened = until - timedelta(days=365 * years + 30)
    index = {n: _base_index(n, companies, suffixes) for n in {p.company for p in people
                                                                if p.company}}
    names = sorted(index, key=lambda n: index[n])
    cmds: list[m.Command] = []
    for name in names:
        k = index[name]
        cmds.append(a.OpenAccount(
            account_id=account_id(seed, name), name=name, vat_number=_gb_vat(k),
            industry=["manufacturing", "retail", "finance", "travel"][k % 4],
            size=["1-9", "10-49", "50-249", "250-999", "1000+"][k % 5],
            owner=None if k % 7 == 3 else _OWNERS[k % 4],
            addresses=[a.AddressIn(kind="registered", city="Leeds", postcode=_postcode(k),
                                   country="GB")],
            partner_id="northwind-partners" if k % 11 == 0 else None,
            source_key=f"demo:{seed}:account:{name}:open", occurred_at=opened, actor="demo-import"))
    for name in names:  # subsidiaries hang under their group
        group = f"{_base(name, companies)} Group"
        if name != group and group in index:
            cmds.append(a.SetAccountParent(
                account_id=account_id(seed, name), parent_id=account_id(seed, group),
                source_key=f"demo:{seed}:account:{name}:parent",
                occurred_at=opened + timedelta(days=1), actor="demo-import"))
    registered = {c.customer_id: c.occurred_at for c in plan.commands
                  if isinstance(c, m.RegisterCustomer)}
    linked = [p for p in people if p.company]
    for person in linked:
        joined = registered[person.id] + timedelta(hours=1)
        cmds.append(a.LinkContact(
            account_id=account_id(seed, person.company), customer_id=person.id,
            role=_ROLES[person.i % 5], joined_at=joined,  # type: ignore[arg-type]
            source_key=f"demo:{seed}:c{person.i}:link", occurred_at=joined, actor="sales"))
        others = [c for c in names if c != person.company]
        if person.i % 7 == 2 and others:  # some contacts change employer
            moved = joined + (until - joined) / 2
            cmds.append(a.MoveContact(
                customer_id=person.id, from_account_id=account_id(seed, person.company),
                to_account_id=account_id(seed, others[person.i % len(others)]),
                role="buyer", moved_at=moved, source_key=f"demo:{seed}:c{person.i}:move",
                occurred_at=moved, actor="sales"))
        if person.i % 13 == 4:  # a number that turned out dead
            cmds.append(m.LogCall(
                call_id=f"demo:{seed}:c{person.i}:dead-call", direction="outbound",
                from_number="+44 20 7946 0000", to_number=person.phone, outcome="failed",
                duration_s=0, occurred_at=until - timedelta(days=5), actor="pbx"))
        if person.i % 13 == 9:  # an address that bounced
            cmds.append(RecordEmailBounce(
                customer_id=person.id, original_message_id=f"<demo-{seed}-{person.i}@x>",
                recipient=person.email, action="failed", status="5.1.1",
                report_message_id=f"<demo-{seed}-{person.i}-dsn@x>",
                occurred_at=until - timedelta(days=4), actor="mailer"))
    cmds += _planted(plan, people, names, index, seed, until)
    plan.commands += cmds


def _base(name: str, companies: list[str]) -> str:
    return next((c for c in companies if name.startswith(c + " ")), name)


def _base_index(name: str, companies: list[str], suffixes: list[str]) -> int:
    base = _base(name, companies)
    suffix = name[len(base) + 1:]
    return companies.index(base) * len(suffixes) + suffixes.index(suffix)


def _planted(plan: Any, people: list[Any], names: list[str], index: dict[str, int], seed: int,
             until: datetime) -> list[m.Command]:
    cmds: list[m.Command] = []
    at = until - timedelta(days=20)
    for person in people[3::30]:  # same mailbox (+tag), the name typed differently
        local, _, domain = person.email.partition("@")
        dup = uuid5(NAMESPACE, f"demo-customer:demo:{seed}:planted-email{person.i}")
        cmds.append(m.RegisterCustomer(
            customer_id=dup, name=_variant(person.name), company=person.company,
            contact_points=[m.ContactPointIn(kind="email", value=f"{local}+crm@{domain}")],
            source_key=f"demo:{seed}:planted-email{person.i}", occurred_at=at, actor="crm-import"))
    by_email = {p.i for p in people[3::30]}
    with_company = [p for p in people if p.company]
    for person in [p for p in with_company[5::30] if p.i not in by_email]:  # the name typed differently in the same company
        dup = uuid5(NAMESPACE, f"demo-customer:demo:{seed}:planted-name{person.i}")
        cmds.append(m.RegisterCustomer(
            customer_id=dup, name=_variant(person.name), company=person.company,
            contact_points=[m.ContactPointIn(kind="email",
                                             value=f"alt.{person.i}@example.com")],
            source_key=f"demo:{seed}:planted-name{person.i}", occurred_at=at, actor="crm-import"))
    # Planted by the company's own index, so a smaller plan's plants are a larger one's too.
    for name in [n for n in names if index[n] % 17 in (1, 2)]:  # opened twice: same VAT
        k = index[name]
        cmds.append(a.OpenAccount(
            account_id=uuid5(NAMESPACE, f"demo-account:{seed}:{name}:planted-vat"),
            name=name.upper(), vat_number=_gb_vat(k), owner="raj",
            addresses=[a.AddressIn(postcode=_postcode(k), country="GB")],
            source_key=f"demo:{seed}:account:{name}:planted-vat", occurred_at=at,
            actor="crm-import"))
    for name in [n for n in names if index[n] % 17 == 5]:  # no VAT, legal form spelled out
        k = index[name]
        spelled = name.replace(" Ltd", " Limited").replace(" plc", " Public Limited Company")
        cmds.append(a.OpenAccount(
            account_id=uuid5(NAMESPACE, f"demo-account:{seed}:{name}:planted-name"),
            name=spelled if spelled != name else f"The {name}",
            addresses=[a.AddressIn(postcode=_postcode(k), country="GB")],
            source_key=f"demo:{seed}:account:{name}:planted-name", occurred_at=at,
            actor="crm-import"))
    return cmds


def planted_pairs(plan_commands: list[m.Command], seed: int) -> set[tuple[str, str, str]]:
    """(kind, id, id) of every planted duplicate pair, ids in canonical order."""
    pairs: set[tuple[str, str, str]] = set()
    for cmd in plan_commands:
        key = cmd.source_key or ""
        if isinstance(cmd, m.RegisterCustomer) and ":planted-" in key:
            i = int(key.rsplit("planted-", 1)[1].removeprefix("email").removeprefix("name"))
            original = uuid5(NAMESPACE, f"demo-customer:demo:{seed}:c{i}")
            pairs.add(("customer", *sorted((str(original), str(cmd.customer_id)))))
        elif isinstance(cmd, a.OpenAccount) and ":planted-" in key:
            name = key.split(":account:", 1)[1].rsplit(":planted-", 1)[0]
            pairs.add(("account", *sorted((str(account_id(seed, name)), str(cmd.account_id)))))
    return pairs
