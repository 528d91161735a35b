"""A realistic, deterministic demo data set, recorded through the Hub.

``demo_plan(customers, years, seed, until)`` is pure: the same arguments give
the same commands, in the same order, with the same source keys, so seeding
twice records nothing new. Customers are generated independently of each
other (customer *i* depends only on the seed and *i*), so a smaller data set is
a prefix of a larger one.

Numbers come from Ofcom's ranges reserved for drama (020 7946 0xxx, 0113 496
0xxx, …), written as full +44 numbers so they normalise the same whatever
``TOUCHSTREAM_DEFAULT_REGION`` is; ``REGION`` is their country, the region
``scripts/start`` sets so that national numbers like ``020 7946 0018`` work.
The 0118/0121/0131/0141 496 0xxx ranges are never handed out (``FREE_RANGES``):
the README's examples use them, so they never collide with a demo customer.
Email addresses are on example.com / example.org. Every ``occurred_at`` lies
before ``until``.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from commands import messages as m
from commands.dispatch import RecordWorkDone
from commands.hub import NAMESPACE, Hub
from commands.replies import SendMaterial
from touchstream import demo_accounts, demo_dispatch
from touchstream.demo_analytics import activity_plan
from touchstream.demo_knowledge import knowledge_plan
from touchstream.demo_marketing import Person, marketing_plan
from touchstream.demo_replies import replies_plan
from touchstream.demo_sales import sales_plan
from touchstream.demo_service import service_plan
from touchstream.demo_value import retention_plan
from touchstream.demo_work import work_plan

REGION = "GB"
DEFAULT_UNTIL = datetime(2026, 10, 1, tzinfo=UTC)
DEFAULT_CUSTOMERS = 150  # ~10 s on SQLite on 2 cores
SWITCHBOARD = "+44 20 7946 0000"
FAX_LINE = "+44 20 7946 0001"
SUPPORT = "support@example.org"
SALES = "sales@example.org"

_RANGES = [
    "+44 20 7946 0{:03d}", "+44 113 496 0{:03d}", "+44 114 496 0{:03d}",
    "+44 116 496 0{:03d}", "+44 117 496 0{:03d}", "+44 118 496 0{:03d}",
    "+44 121 496 0{:03d}", "+44 131 496 0{:03d}", "+44 141 496 0{:03d}",
    "+44 151 496 0{:03d}", "+44 161 496 0{:03d}", "+44 191 498 0{:03d}",
    "+44 28 9649 6{:03d}",
]
_POOL = len(_RANGES) * 1000 - 10  # slots 0–9 of the first range are the company's own
MAX_CUSTOMERS = 4000  # phones from the front of the pool, faxes from the back
# Between the last phone slot (ranges 0–4) and the first fax slot (ranges 9–12).
FREE_RANGES = ("+44 118 496 0", "+44 121 496 0", "+44 131 496 0", "+44 141 496 0")

_FIRST = ["Ada", "Grace", "Alan", "Katherine", "Tim", "Margaret", "Linus", "Barbara", "Dennis",
          "Frances", "Ken", "Hedy", "Edsger", "Radia", "Donald", "Sophie", "John", "Anita",
          "Niklaus", "Shafi", "Claude", "Mary", "Guido", "Karen", "Bjarne", "Joan", "Vint",
          "Evelyn", "Tony", "Lynn"]
_LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Berners-Lee", "Hamilton", "Torvalds",
         "Liskov", "Ritchie", "Allen", "Thompson", "Lamarr", "Dijkstra", "Perlman", "Knuth",
         "Wilson", "McCarthy", "Borg", "Wirth", "Goldwasser", "Shannon", "Keller", "van Rossum",
         "Sparck Jones", "Stroustrup", "Clarke", "Cerf", "Berezin", "Hoare", "Conway"]
_COMPANY = ["Analytical Engines", "Northwind Traders", "Contoso", "Fabrikam", "Tailspin Toys",
            "Wingtip Supplies", "Adventure Works", "Litware", "Proseware", "Lucerne Publishing",
            "Margie's Travel", "Alpine Ski House", "Coho Winery", "Trey Research",
            "Humongous Insurance", "Blue Yonder Airlines", "Woodgrove Bank", "Fourth Coffee"]
_SUFFIX = ["Ltd", "plc", "LLP", "& Co", "Group"]
_CITY = ["Leeds", "Manchester", "Bristol", "Sheffield", "Glasgow", "Edinburgh", "Belfast",
         "Leicester", "Reading", "Liverpool", "Newcastle", "Birmingham", "London"]
_AGENTS = ["mia", "omar", "lena", "raj", "tom", "ines", "kofi", "yuki"]
_FIELD_STAFF = ["jonas", "priya", "sam", "eva"]
_PARTNERS = ["northwind-partners", "contoso-resellers"]
_SUBJECTS = ["Invoice question", "Delivery date", "Quote request", "Service appointment",
             "Contract renewal", "Password reset", "Damaged item", "Price list 2026",
             "Change of address", "Warranty claim"]
_FORMS = {"contact": "https://www.example.org/contact",
          "quote": "https://www.example.org/quote",
          "newsletter": "https://www.example.org/newsletter",
          "service-booking": "https://www.example.org/service/book"}


def pool_number(slot: int) -> str:
    """The ``slot``-th reserved drama number (slot 0 is after the company's own lines)."""
    slot += 10
    return _RANGES[slot // 1000].format(slot % 1000)


@dataclass
class DemoPlan:
    commands: list[m.Command] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    customers: int = 0


def _pdf(text: str) -> bytes:
    """A tiny one-page PDF with one line of text (fax documents, attachments)."""
    body = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>"),
            b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


class _Customer:
    """Generates one customer's life; all randomness from its own ``Random``."""

    def __init__(self, plan: DemoPlan, seed: int, i: int, years: int, until: datetime) -> None:
        self.plan, self.i, self.until = plan, i, until
        self.rng = random.Random(f"touchstream-demo:{seed}:{i}")
        self.key = f"demo:{seed}:c{i}"
        span = timedelta(days=365 * years)
        self.t = until - span + timedelta(seconds=self.rng.uniform(0, span.total_seconds() * 0.3))
        self.first, self.last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        self.name = f"{self.first} {self.last}"
        self.company = (f"{self.rng.choice(_COMPANY)} {self.rng.choice(_SUFFIX)}"
                        if self.rng.random() < 0.6 else None)
        local = f"{self.first}.{self.last}".lower().replace(" ", "").replace("'", "")
        domain = "example.org" if self.company else "example.com"
        self.email = f"{local}.{i}@{domain}"
        self.phone = pool_number(i)
        self.fax = pool_number(_POOL - 1 - i) if self.company and self.rng.random() < 0.4 else None
        self.id = customer_id(seed, i)
        self.stage = "prospect"
        self.n = 0

    def _at(self, max_days: float) -> datetime:
        self.t = min(self.t + timedelta(days=self.rng.uniform(0.05, max_days)),
                     self.until - timedelta(minutes=5))
        return self.t.replace(microsecond=0)

    def _sk(self, what: str) -> str:
        self.n += 1
        return f"{self.key}:{self.n}:{what}"

    def add(self, cmd: m.Command) -> None:
        self.plan.commands.append(cmd)

    def generate(self, touchpoints: int) -> Iterator[None]:
        rng = self.rng
        points = [m.ContactPointIn(kind="email", value=self.email),
                  m.ContactPointIn(kind="phone", value=self.phone, label="work")]
        if self.fax:
            points.append(m.ContactPointIn(kind="fax", value=self.fax, label="office"))
        self.add(m.RegisterCustomer(
            customer_id=self.id, name=self.name, company=self.company, contact_points=points,
            source_key=f"{self.key}:register", occurred_at=self._at(1), actor="demo-import"))
        if self.company and rng.random() < 0.25:
            self.add(m.AssignPartner(customer_id=self.id, partner_id=rng.choice(_PARTNERS),
                                     source_key=self._sk("partner"), occurred_at=self._at(5),
                                     actor="sales:" + rng.choice(_AGENTS)))
        kinds = ["call", "email", "web-form", "visit", "fax", "callback", "note", "stage"]
        weights = [30, 26, 8, 10, 5 if self.fax else 0, 7, 6, 8]
        for _ in range(touchpoints):
            getattr(self, "_" + rng.choices(kinds, weights)[0].replace("-", "_"))()
            yield

    # -- one method per kind of touchpoint --------------------------------
    def _call(self) -> None:
        rng, at = self.rng, self._at(45)
        inbound = rng.random() < 0.65
        call_id = self._sk("call")
        outcome = rng.choices(["answered", "missed", "abandoned", "voicemail", "busy"],
                              [70, 8, 10, 8, 4])[0]
        queue = rng.choice(["sales", "support", "billing"]) if inbound else None
        agent = rng.choice(_AGENTS) if outcome == "answered" or not inbound else None
        ivr = [rng.choice("123"), rng.choice("12")] if inbound else []
        wait = rng.randint(3, 240) if inbound else None
        duration = rng.randint(40, 1500) if outcome == "answered" else rng.randint(0, 30)
        if inbound and rng.random() < 0.4:
            steps = ["offered", "queued"] + (["answered", "ended"] if outcome == "answered"
                                             else [outcome])
            for seq, step in enumerate(steps):
                self.add(m.RecordCallStep(
                    call_id=call_id, step=step, sequence=seq, from_number=self.phone,  # type: ignore[arg-type]
                    to_number=SWITCHBOARD, queue=queue, agent=agent if step != "offered" else None,
                    occurred_at=at + timedelta(seconds=seq * (wait or 5) / len(steps)),
                    actor="pbx"))
        self.add(m.LogCall(
            call_id=call_id, direction="inbound" if inbound else "outbound",
            from_number=self.phone if inbound else SWITCHBOARD,
            to_number=SWITCHBOARD if inbound else self.phone, queue=queue, agent=agent,
            ivr_choices=ivr, outcome=outcome,  # type: ignore[arg-type]
            duration_s=duration, wait_s=wait,
            recording_ref=f"rec-{call_id}" if outcome == "answered" else None,
            summary=rng.choice(_SUBJECTS) if outcome == "answered" else None,
            occurred_at=at, actor="pbx"))

    def _email(self) -> None:
        rng, at = self.rng, self._at(40)
        thread = f"<{self._sk('mail')}@mail.example.com>"
        subject = rng.choice(_SUBJECTS)
        team = SALES if "Quote" in subject or "Price" in subject else SUPPORT
        attachments = []
        if rng.random() < 0.2:
            doc = _pdf(f"{subject} - {self.name}")
            self.plan.blobs.append(doc)
            attachments.append(m.Attachment(sha256=hashlib.sha256(doc).hexdigest(),
                                            size=len(doc), content_type="application/pdf",
                                            filename="details.pdf"))
        self.add(m.RecordEmail(
            message_id=thread, thread_id=thread, from_address=self.email, to=[team],
            subject=subject, body_text=f"Hello,\n\nabout: {subject.lower()}.\n\n{self.first}",
            attachments=attachments, occurred_at=at, actor="imap"))
        refs = [thread]
        for turn in range(rng.choice([1, 1, 2, 3])):
            at = at + timedelta(hours=rng.uniform(0.5, 30))
            outbound = turn % 2 == 0
            mid = f"<{self._sk('re')}@mail.example.{'org' if outbound else 'com'}>"
            self.add(m.RecordEmail(
                message_id=mid, thread_id=thread, in_reply_to=refs[-1], references=list(refs),
                direction="outbound" if outbound else "inbound",
                from_address=team if outbound else self.email,
                to=[self.email] if outbound else [team], subject=f"Re: {subject}",
                body_text="Thanks, we are on it." if outbound else "Thank you!",
                occurred_at=at, actor=("agent:" + rng.choice(_AGENTS)) if outbound else "imap"))
            refs.append(mid)
        self.t = max(self.t, at)

    def _web_form(self) -> None:
        rng, at = self.rng, self._at(60)
        form = rng.choice(list(_FORMS))
        fields = {"name": self.name, "email": self.email}
        if form != "newsletter":
            fields["message"] = rng.choice(_SUBJECTS)
        self.add(m.RecordWebForm(
            form_name=form, submission_id=self._sk("form"), page_url=_FORMS[form],
            fields=fields, email=self.email, occurred_at=at, actor="web-forms"))

    def _visit(self) -> None:
        rng, at = self.rng, self._at(90)
        field_visit = rng.random() < 0.6
        self.add(m.RecordVisit(
            customer_id=self.id, visit_id=self._sk("visit"),
            visit_kind="field" if field_visit else "office",
            staff=rng.choice(_FIELD_STAFF if field_visit else _AGENTS),
            place=(f"Customer site, {rng.choice(_CITY)}" if field_visit
                   else "Head office, London"),
            purpose=rng.choice(["maintenance", "installation", "sales meeting", "training",
                                "complaint follow-up"]),
            outcome=rng.choice(["done", "follow-up needed", "quote sent", "no one on site"]),
            notes="Logged on tablet, synced later." if rng.random() < 0.3 else None,
            duration_min=rng.choice([30, 45, 60, 90, 120]), occurred_at=at, actor="tablet"))

    def _fax(self) -> None:
        rng, at = self.rng, self._at(120)
        fax_id = self._sk("fax")
        doc = _pdf(f"Order form {fax_id}")
        self.plan.blobs.append(doc)
        inbound = rng.random() < 0.7
        self.add(m.RecordFax(
            fax_id=fax_id, direction="inbound" if inbound else "outbound",
            from_number=self.fax if inbound else FAX_LINE,
            to_number=FAX_LINE if inbound else self.fax, pages=rng.randint(1, 6),
            document_sha256=hashlib.sha256(doc).hexdigest(), document_size=len(doc),
            content_type="application/pdf", status="complete" if rng.random() < 0.9 else "partial",
            occurred_at=at, actor="fax-gateway"))

    def _callback(self) -> None:
        rng, at = self.rng, self._at(50)
        cb = self._sk("callback")
        self.add(m.RequestCallback(
            callback_id=cb, number=self.phone, channel=rng.choice(["phone", "web"]),
            requested_for=at + timedelta(hours=4), reason=rng.choice(_SUBJECTS),
            occurred_at=at, actor="ivr"))
        agent = rng.choice(_AGENTS)
        self.add(m.CompleteCallback(
            customer_id=self.id, callback_id=cb,
            outcome=rng.choice(["reached", "reached", "no-answer", "voicemail"]),
            call_id=f"{cb}-call", occurred_at=at + timedelta(hours=rng.uniform(1, 6)),
            actor=f"agent:{agent}"))

    def _note(self) -> None:
        rng = self.rng
        self.add(m.AddNote(
            customer_id=self.id, text=rng.choice([
                "Prefers calls after 2pm.", "Decision maker is the finance director.",
                "Asked not to be contacted about newsletters.", "VIP: escalate quickly.",
                "Budget approved for next quarter."]),
            visibility=rng.choice(["internal", "internal", "shared"]),
            source_key=self._sk("note"), occurred_at=self._at(30),
            actor="agent:" + rng.choice(_AGENTS)))

    def _stage(self) -> None:
        nxt = {"prospect": "target", "target": "current", "current": "lost", "lost": "target"}
        to = nxt[self.stage]
        if to == "lost" and self.rng.random() < 0.7:
            return  # most current customers stay
        self.stage = to
        if to == "current" and self.rng.random() < 0.5:
            self.add(m.ChangeProfile(
                customer_id=self.id, changes={"account_manager": self.rng.choice(_AGENTS)},
                source_key=self._sk("profile"), occurred_at=self._at(3), actor="sales"))
        self.add(m.ChangeLifecycleStage(
            customer_id=self.id, to_stage=to,  # type: ignore[arg-type]
            reason={"target": "qualified lead", "current": "signed contract",
                    "lost": "went to a competitor"}[to],
            source_key=self._sk("stage"), occurred_at=self._at(20), actor="sales"))


def demo_plan(customers: int = DEFAULT_CUSTOMERS, years: int = 3, seed: int = 1,
              until: datetime = DEFAULT_UNTIL) -> DemoPlan:
    """Every demo command, in recording order (pure: no clock, no I/O)."""
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"--customers must be 1–{MAX_CUSTOMERS}, got {customers}")
    if not 1 <= years <= 30:
        raise ValueError(f"--years must be 1–30, got {years}")
    plan = DemoPlan(customers=customers)
    people = [_Customer(plan, seed, i, years, until) for i in range(customers)]
    for person in people:
        for _ in person.generate(person.rng.randint(4, 6 + 4 * years)):
            pass
    _duplicates(plan, people, seed, until)
    demo_accounts.extend(plan, people, _COMPANY, _SUFFIX, seed, years, until)
    plan.commands += sales_plan(plan.commands, seed, until)
    plan.commands += retention_plan(plan.commands, seed, until)
    plan.commands += marketing_plan([Person(p.id, p.email, p.phone) for p in people], seed,
                                    years, until)
    plan.commands += service_plan([p.id for p in people], seed, until)
    demo_dispatch.plan_work_orders(plan.commands, plan.blobs, [p.id for p in people], seed, until)
    plan.commands += activity_plan([p.id for p in people], seed, until)
    plan.commands += work_plan(plan.commands, seed, until)
    plan.commands += knowledge_plan(plan.commands, seed, until)
    plan.commands += replies_plan(plan.commands, plan.blobs, seed, until)
    return plan


def _duplicates(plan: DemoPlan, people: list[_Customer], seed: int, until: datetime) -> None:
    """Every 25th customer (from the second) also got a duplicate record, merged later."""
    for person in people[1::25]:
        dup_key = f"demo:{seed}:dup{person.i}"
        dup_id = uuid5(NAMESPACE, f"demo-customer:{dup_key}")
        home = f"{person.first.lower()}.home.{person.i}@example.com"
        at = min(person.t, until - timedelta(days=3)).replace(microsecond=0)
        plan.commands += [
            m.RegisterCustomer(customer_id=dup_id, name=person.name.upper(),
                               contact_points=[m.ContactPointIn(kind="email", value=home)],
                               source_key=f"{dup_key}:register",
                               occurred_at=at - timedelta(days=2), actor="web-forms"),
            m.RecordWebForm(form_name="newsletter", submission_id=f"demo-{dup_key}",
                            page_url=_FORMS["newsletter"], email=home,
                            fields={"name": person.name, "email": home},
                            occurred_at=at - timedelta(days=2), actor="web-forms"),
            m.MergeCustomers(source_id=dup_id, target_id=person.id,
                             occurred_at=at - timedelta(days=1), actor="agent:mia"),
        ]


@dataclass(frozen=True)
class DemoReport:
    customers: int
    commands: int
    recorded_events: int
    duplicates: int
    seconds: float


def seed(hub: Hub, plan: DemoPlan, blobs: Any = None,
         progress: Callable[[int, int], None] | None = None) -> DemoReport:
    """Record the plan through the hub (blobs first, so no event points at a missing one).

    ``progress(done, total)`` is called after each command.
    """
    started = time.perf_counter()
    # The plan names documents by their SHA-256; a sealed store keeps them under a
    # keyed address instead, which the recorded commands must carry.
    stored: dict[str, str] = {}
    if blobs is not None:
        for data in plan.blobs:
            stored[hashlib.sha256(data).hexdigest()] = blobs.put(data)
    recorded = duplicates = 0
    total = len(plan.commands)
    for done, cmd in enumerate(plan.commands, start=1):
        result = hub.execute(_stored_refs(cmd, stored) if stored else cmd)
        if result.duplicate:
            duplicates += 1
        else:
            recorded += len(result.event_ids)
        if progress is not None:
            progress(done, total)
    return DemoReport(customers=plan.customers, commands=len(plan.commands),
                      recorded_events=recorded, duplicates=duplicates,
                      seconds=round(time.perf_counter() - started, 2))


def _stored_refs(cmd: m.Command, stored: dict[str, str]) -> m.Command:
    """``cmd`` with its document and attachment references at their stored addresses."""
    if isinstance(cmd, RecordWorkDone) and cmd.signature_ref in stored:
        return cmd.model_copy(update={"signature_ref": stored[cmd.signature_ref]})
    if isinstance(cmd, SendMaterial) and cmd.material_id in stored:
        return cmd.model_copy(update={"material_id": stored[cmd.material_id]})
    if isinstance(cmd, m.RecordFax) and cmd.document_sha256 in stored:
        return cmd.model_copy(update={"document_sha256": stored[cmd.document_sha256]})
    if isinstance(cmd, m.RecordEmail) and cmd.attachments:
        return cmd.model_copy(update={"attachments": [
            a.model_copy(update={"sha256": stored.get(a.sha256, a.sha256)})
            for a in cmd.attachments]})
    return cmd


def customer_id(seed_: int, i: int) -> UUID:
    """The id of demo customer ``i`` (for tests and docs)."""
    return uuid5(NAMESPACE, f"demo-customer:demo:{seed_}:c{i}")
