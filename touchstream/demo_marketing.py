"""Demo marketing: consents (some by double opt-in, some expiring, some withdrawn), segments,
and each year an email campaign, a newsletter, a web campaign with a code and a phone
campaign with a tracked number, with their sends, bounces, unsubscribes and responses;
some responders then order within the campaign's window or become an opportunity naming
the campaign as its source (so attributed revenue and ROI are not empty).

Pure like ``demo_plan``: the same arguments give the same commands. The plan
keeps its own account of each customer's consent so that what it records as
sent is what the outbox would have sent (a send to someone without consent at
that moment is recorded as the outbox's suppression, never as sent). The
history is recorded as delivered already (``RecordEmailSent``), so a hub
serving the demo sends none of it again. Links in the demo's emails point at
``DEMO_HUB`` and are not signed by your hub.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

from commands import email_messages as em
from commands import marketing as cm
from commands import messages as m
from commands import sales as sc
from commands.provenance import source_key
from domain.customer import MESSAGE_ID_NAMESPACE

DEMO_HUB = "https://hub.example.com"
SENDER = "news@example.org"
_NS = UUID("0d2b8d0e-6b0f-4d53-8d0c-3d8f3f1a9e55")


@dataclass(frozen=True)
class Person:
    customer_id: UUID
    email: str
    phone: str


def segment_ids(seed: int) -> dict[str, UUID]:
    return {name: uuid5(_NS, f"{seed}:segment:{name}")
            for name in ("prospects", "newsletter", "dormant")}


def campaign_id(seed: int, name: str) -> UUID:
    return uuid5(_NS, f"{seed}:campaign:{name}")


def message_id(cmd: m.Command, sender: str = SENDER) -> str:
    """The Message-ID the write model gives the email ``cmd`` queues (from its source key)."""
    return f"<{uuid5(MESSAGE_ID_NAMESPACE, source_key(cmd))}@{sender.rpartition('@')[2]}>"


class _Plan:
    def __init__(self, people: Sequence[Person], seed: int, years: int,
                 until: datetime) -> None:
        self.people, self.seed, self.until = people, seed, until
        self.start = until - timedelta(days=365 * years)
        self.years = years
        self.timed: list[tuple[datetime, int, m.Command]] = []
        # customer -> topic -> list of (from, to) periods the consent was valid
        self.valid: dict[UUID, dict[str, list[list[datetime | None]]]] = {}
        self.expiring: dict[UUID, datetime] = {}

    def add(self, at: datetime, cmd: m.Command) -> None:
        self.timed.append((at, len(self.timed), cmd))

    def consents_at(self, who: UUID, topic: str, at: datetime) -> bool:
        return any(start <= at and (end is None or at < end)  # type: ignore[operator]
                   for start, end in self.valid.get(who, {}).get(topic, []))

    def end(self, who: UUID, topic: str, at: datetime) -> bool:
        """End the consent at ``at`` if it is valid then (True: a withdrawal to record)."""
        periods = self.valid.get(who, {}).get(topic, [])
        if periods and self.consents_at(who, topic, at):
            periods[-1][1] = at
            return True
        return False

    def rng(self, i: int, what: object) -> random.Random:
        """Customer ``i``'s own randomness for ``what``: a smaller demo is a prefix."""
        return random.Random(f"touchstream-demo-marketing:{self.seed}:{i}:{what}")

    @staticmethod
    def _at(rng: random.Random, low: float, high: float, base: datetime) -> datetime:
        return (base + timedelta(days=rng.uniform(low, high))).replace(microsecond=0)

    # -- consents ------------------------------------------------------------------------
    def consents(self) -> None:
        for i, p in enumerate(self.people):
            rng = self.rng(i, "consent")
            topics = self.valid.setdefault(p.customer_id, {})
            given = self._at(rng, 0, 120, self.start)
            if rng.random() < 0.65:
                expires = given + timedelta(days=365) if rng.random() < 0.3 else None
                self.add(given, cm.GiveConsent(
                    customer_id=p.customer_id, consent_channel="email", purpose="marketing",
                    evidence_kind="form-submission", evidence_id=f"demo-consent-{self.seed}-{i}",
                    expires_at=expires, occurred_at=given, actor="web-forms"))
                topics["email:marketing"] = [[given, expires]]
                if expires is not None:
                    self.expiring[p.customer_id] = expires
                if rng.random() < 0.06:
                    at = self._at(rng, 30, 400, given)
                    if self.end(p.customer_id, "email:marketing", at) and at < self.until:
                        self.add(at, cm.WithdrawConsent(
                            customer_id=p.customer_id, consent_channel="email",
                            purpose="marketing", occurred_at=at, actor="agent:mia",
                            source_key=f"demo-withdraw-{self.seed}-{i}"))
            if rng.random() < 0.3:
                self.double_opt_in(i, p, self._at(rng, 0, 200, self.start), rng)
            if rng.random() < 0.2:
                at = self._at(rng, 0, 300, self.start)
                self.add(at, cm.GiveConsent(
                    customer_id=p.customer_id, consent_channel="phone", purpose="marketing",
                    evidence_kind="call", evidence_id=f"demo-consent-call-{self.seed}-{i}",
                    occurred_at=at, actor="agent:omar"))
                topics["phone:marketing"] = [[at, None]]

    def double_opt_in(self, i: int, p: Person, at: datetime, rng: random.Random) -> None:
        request = uuid5(_NS, f"{self.seed}:optin:{i}")
        ask = cm.RequestConsent(
            customer_id=p.customer_id, request_id=request, purpose="newsletter",
            evidence_id=f"demo-newsletter-{self.seed}-{i}", from_address=SENDER,
            confirm_url=f"{DEMO_HUB}/marketing/consent/demo-{request}", occurred_at=at,
            actor="web-forms")
        self.add(at, ask)
        self.add(at + timedelta(minutes=1), em.RecordEmailSent(
            customer_id=p.customer_id, message_id=message_id(ask), attempt=1,
            response="250 2.0.0 queued", occurred_at=at + timedelta(minutes=1), actor="smtp"))
        if rng.random() < 0.8:  # some never click
            confirmed = at + timedelta(hours=rng.uniform(0.2, 40))
            self.add(confirmed, cm.ConfirmConsent(
                customer_id=p.customer_id, request_id=request, occurred_at=confirmed,
                actor="double-opt-in"))
            self.valid[p.customer_id]["email:newsletter"] = [[confirmed, None]]

    # -- campaigns -----------------------------------------------------------------------
    def segments(self) -> None:
        ids = segment_ids(self.seed)
        rules = {
            "prospects": ("Prospects and targets", {"lifecycle": ["prospect", "target"]}),
            "newsletter": ("Newsletter readers", {"consent": "email:newsletter"}),
            "dormant": ("Dormant with email consent", {"all": [
                {"consent": "email:marketing"}, {"last_contact_older_than_days": 180}]}),
        }
        for key, (name, rule) in rules.items():
            self.add(self.start, cm.DefineSegment(
                segment_id=ids[key], name=name, rule=rule, occurred_at=self.start,
                actor="marketing:ines", source_key=f"demo-segment-{self.seed}-{key}"))

    def campaign(self, name: str, channel: str, purpose: str, budget: int, starts: datetime,
                 days: int, segment: str | None, code: str, number: str | None) -> UUID:
        cid = campaign_id(self.seed, name)
        ends = (starts + timedelta(days=days)).date()
        self.add(starts - timedelta(days=7), cm.DefineCampaign(
            campaign_id=cid, name=name, channel=channel, purpose=purpose,  # type: ignore[arg-type]
            budget=Decimal(budget), currency="GBP", starts_on=starts.date(), ends_on=ends,
            segment_id=segment_ids(self.seed)[segment] if segment else None, code=code,
            tracked_number=number, attribution_window_days=21,
            occurred_at=starts - timedelta(days=7), actor="marketing:ines",
            source_key=f"demo-campaign-{cid}"))
        self.add(starts, cm.LaunchCampaign(campaign_id=cid, occurred_at=starts,
                                           actor="marketing:ines"))
        closed = datetime.combine(ends, starts.timetz()) + timedelta(days=1)
        if closed < self.until:
            self.add(closed, cm.CloseCampaign(campaign_id=cid, occurred_at=closed,
                                              actor="marketing:ines"))
        return cid

    def email_campaign(self, cid: UUID, purpose: str, at: datetime, share: float) -> None:
        topic = f"email:{purpose}"
        for i, p in enumerate(self.people):
            rng = self.rng(i, cid)
            if rng.random() >= share:
                continue
            # The newsletter goes to its readers' segment: mostly people who consent (the
            # rest withdrew after the segment was read, and the outbox stops those).
            if (purpose == "newsletter" and not self.consents_at(p.customer_id, topic, at)
                    and rng.random() < 0.85):
                continue
            queue = cm.QueueCampaignEmail(
                customer_id=p.customer_id, campaign_id=cid, from_address=SENDER,
                subject="Our spring offer" if purpose == "marketing" else "News from us",
                body_text="Hello,\n\nthis season's offers are in.\n",
                unsubscribe_url=f"{DEMO_HUB}/marketing/unsubscribe/demo-{cid}-{p.customer_id}",
                occurred_at=at, actor="marketing:ines")
            self.add(at, queue)
            mid, sent = message_id(queue), at + timedelta(minutes=2)
            if not self.consents_at(p.customer_id, topic, sent):
                # The outbox's check at send time; one that passes records nothing.
                self.add(sent, cm.ClearMarketingEmail(
                    customer_id=p.customer_id, campaign_id=cid, message_id=mid,
                    purpose=purpose, occurred_at=sent, actor="smtp"))  # type: ignore[arg-type]
                continue
            self.add(sent, em.RecordEmailSent(customer_id=p.customer_id, message_id=mid,
                                              attempt=1, response="250 2.0.0 queued",
                                              occurred_at=sent, actor="smtp"))
            roll = rng.random()
            if roll < 0.03:
                bounced = sent + timedelta(hours=2)
                self.add(bounced, em.RecordEmailBounce(
                    customer_id=p.customer_id, original_message_id=mid, recipient=p.email,
                    action="failed", status="5.1.1", diagnostic="550 5.1.1 no such user",
                    report_message_id=f"<dsn-{uuid5(_NS, mid)}@mx.example.com>",
                    occurred_at=bounced, actor="imap"))
                for t in ("email:marketing", "email:newsletter"):
                    self.end(p.customer_id, t, bounced)
            elif roll < 0.08:
                gone = self._at(rng, 0.1, 10, sent)
                if gone < self.until and self.end(p.customer_id, topic, gone):
                    self.add(gone, cm.WithdrawConsent(
                        customer_id=p.customer_id, consent_channel="email",
                        purpose=purpose, reason="unsubscribe", campaign_id=cid,  # type: ignore[arg-type]
                        occurred_at=gone, actor="unsubscribe-link"))
            elif roll < 0.3:
                replied = self._at(rng, 0.1, 15, sent)
                if replied < self.until:
                    self.add(replied, m.RecordEmail(
                        message_id=f"<re-{uuid5(_NS, mid)}@mail.example.com>",
                        in_reply_to=mid, references=[mid], from_address=p.email,
                        to=[SENDER], subject="Re: Our spring offer",
                        body_text="Sounds good, please call me.", occurred_at=replied,
                        actor="imap"))
                    self.converts(i, p, cid, replied)

    def responses(self, cid: UUID, code: str, number: str | None, starts: datetime,
                  days: int, share: float) -> None:
        for i, p in enumerate(self.people):
            rng = self.rng(i, code)
            if rng.random() >= share:
                continue
            at = self._at(rng, 0, days + 10, starts)
            if at >= self.until:
                continue
            if number is None:
                self.add(at, m.RecordWebForm(
                    form_name="contact", submission_id=f"demo-{code}-{self.seed}-{i}",
                    page_url=f"https://www.example.org/webinar?utm_campaign={code.lower()}",
                    fields={"name": p.email.partition("@")[0], "email": p.email, "campaign": code,
                            "message": "Please book me a seat."},
                    email=p.email, occurred_at=at, actor="web-forms"))
            else:
                self.add(at, m.LogCall(
                    call_id=f"demo-{code}-{self.seed}-{i}", direction="inbound",
                    from_number=p.phone, to_number=number, outcome="answered",  # type: ignore[arg-type]
                    duration_s=rng.randint(60, 600), wait_s=rng.randint(2, 60),
                    ivr_choices=[], occurred_at=at, actor="pbx"))
            self.converts(i, p, cid, at)

    def converts(self, i: int, p: Person, cid: UUID, responded: datetime) -> None:
        """A quarter of responders order within 14 days (in the campaigns' currency); some
        others become an opportunity naming the campaign as its source."""
        rng = self.rng(i, f"converts:{cid}")  # its own draws: the rest of the plan is unchanged
        roll, at = rng.random(), self._at(rng, 0.5, 14, responded)
        if at >= self.until:
            return
        key = uuid5(_NS, f"{self.seed}:converts:{cid}:{p.customer_id}")
        price = rng.choice(("240.00", "480.00", "1150.00"))
        if roll < 0.25:
            self.add(at, sc.PlaceOrder(
                customer_id=p.customer_id, order_number=f"SO-C{key.hex[:10].upper()}",
                lines=[{"product_code": "PROMO-KIT", "quantity": "1", "unit_price": price}],
                total=price, currency="GBP", occurred_at=at, actor="erp",
                source_key=f"demo-converts-{key}"))
        elif roll < 0.4:
            self.add(at, sc.OpenOpportunity(
                customer_id=p.customer_id, opportunity_id=key, title="Campaign lead",
                amount=price, currency="GBP", expected_close=(at + timedelta(days=60)).date(),
                owner="mia", source_campaign_id=str(cid), occurred_at=at, actor="demo-sales",
                source_key=f"demo-converts-{key}"))

    def expiries(self) -> None:
        as_of = self.until - timedelta(days=1)
        for p in self.people:
            expires = self.expiring.get(p.customer_id)
            periods = self.valid.get(p.customer_id, {}).get("email:marketing", [])
            # Only a consent that ran to its end (not one withdrawn before) expires.
            if expires is not None and expires <= as_of and periods[-1][1] == expires:
                self.add(as_of, cm.ExpireConsents(customer_id=p.customer_id, as_of=as_of,
                                                  occurred_at=as_of, actor="marketing"))


def marketing_plan(people: Sequence[Person], seed: int, years: int,
                   until: datetime) -> list[m.Command]:
    """The demo's marketing commands, in the order they happened."""
    plan = _Plan(people, seed, years, until)
    plan.segments()
    plan.consents()
    for y in range(years):
        base = plan.start + timedelta(days=365 * y)
        yy = (base.year + 1) % 100
        spring = base + timedelta(days=150)
        cid = plan.campaign(f"Spring offer {base.year + 1}", "email", "marketing", 1800, spring,
                            30, "prospects", f"SPRING{yy:02d}", None)
        plan.email_campaign(cid, "marketing", spring + timedelta(days=1), 0.5)
        news = base + timedelta(days=250)
        nid = plan.campaign(f"Newsletter {base.year + 1}", "email", "newsletter", 300, news,
                            14, "newsletter", f"NEWS{yy:02d}", None)
        plan.email_campaign(nid, "newsletter", news + timedelta(hours=2), 0.6)
        web = base + timedelta(days=200)
        wid = plan.campaign(f"Webinar {base.year + 1}", "web", "marketing", 900, web, 20,
                            None, f"WEBINAR{yy:02d}", None)
        plan.responses(wid, f"WEBINAR{yy:02d}", None, web, 20, 0.08)
        phone = base + timedelta(days=300)
        number = f"+44 118 496 0{500 + y:03d}"
        hid = plan.campaign(f"Hotline {base.year + 1}", "phone", "marketing", 1200, phone, 30,
                            None, f"HOTLINE{yy:02d}", number)
        plan.responses(hid, f"HOTLINE{yy:02d}", number, phone, 30, 0.06)
    plan.expiries()
    return [cmd for at, _, cmd in sorted(
        (t for t in plan.timed if t[0] < until), key=lambda t: (t[0], t[1]))]
