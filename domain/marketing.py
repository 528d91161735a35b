"""Marketing: consent per channel and purpose, campaigns, segments, and the rules over them.

Consent lives on the customer's own stream (``Customer.BusinessEvent``): given
with its evidence (a form submission id, a double opt-in confirmation, a call
id), withdrawn (request, unsubscribe, hard bounce), expired. A campaign email
is a normal queued email plus a ``CampaignEmailQueued`` naming its campaign and
purpose; the outbox asks again at send time and a send without valid consent
becomes ``CampaignEmailSuppressed`` (never sent).

Campaigns and segments are records (``domain.records.Record``): no personal
data, only names, budgets, periods, codes, tracked numbers and rules. The
attribution window travels in the campaign's definition, so a read model that
attributes responses is rebuilt to the same figures whatever the settings say
today.

Everything here is pure: times come in the provenance or as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.customer import LIFECYCLE_STAGES, Customer, Provenance
from domain.errors import DomainError
from domain.records import Record

AREA = "marketing"
#: (consent channel, purpose) pairs consent is asked for.
CONSENT_TOPICS = frozenset({("email", "marketing"), ("phone", "marketing"),
                            ("email", "newsletter")})
EVIDENCE_KINDS = ("form-submission", "double-opt-in", "call")
WITHDRAW_REASONS = ("request", "unsubscribe", "hard-bounce")
CAMPAIGN_CHANNELS = ("email", "phone", "web")
CAMPAIGN_STATES = ("defined", "launched", "closed")


class InvalidConsentError(DomainError):
    """Raised when a consent names an unknown channel/purpose pair or evidence kind."""


class ConsentRequestUnknownError(DomainError):
    """Raised when a double opt-in confirmation names no pending request of the customer."""


class CampaignStateError(DomainError):
    """Raised when a campaign is launched, closed or sent in a state that does not allow it."""


class InvalidSegmentRuleError(DomainError):
    """Raised when a segment rule is not a valid expression of the rule language."""


def topic(channel: str, purpose: str) -> str:
    return f"{channel}:{purpose}"


def check_topic(channel: str, purpose: str) -> None:
    if (channel, purpose) not in CONSENT_TOPICS:
        known = ", ".join(sorted(topic(c, p) for c, p in CONSENT_TOPICS))
        raise InvalidConsentError(f"no consent for {topic(channel, purpose)}; one of: {known}")


# -- events on the customer's stream ------------------------------------------------------
class ConsentRequested(Customer.BusinessEvent):
    """A double opt-in was asked for: a confirmation link went out by email."""

    consent_request_id: str
    consent_channel: str
    purpose: str
    evidence_kind: str
    evidence_id: str | None

    def apply(self, aggregate: Any) -> None:
        area = aggregate.area(AREA)
        area.setdefault("requests", {})[self.consent_request_id] = topic(
            self.consent_channel, self.purpose)


class ConsentGiven(Customer.BusinessEvent):
    consent_channel: str
    purpose: str
    evidence_kind: str
    evidence_id: str | None
    expires_at: datetime | None

    def apply(self, aggregate: Any) -> None:
        area = aggregate.area(AREA)
        area.setdefault("consent", {})[topic(self.consent_channel, self.purpose)] = {
            "state": "given", "since": self.occurred_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None}
        confirms = self.evidence_kind == "double-opt-in" and self.evidence_id
        if confirms and area.get("requests", {}).pop(self.evidence_id, None) is not None:
            area.setdefault("confirmed", {})[self.evidence_id] = self.occurred_at.isoformat()


class ConsentWithdrawn(Customer.BusinessEvent):
    consent_channel: str
    purpose: str
    reason: str
    campaign_id: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("consent", {})[
            topic(self.consent_channel, self.purpose)] = {
            "state": "withdrawn", "since": self.occurred_at.isoformat(), "expires_at": None}


class ConsentExpired(Customer.BusinessEvent):
    consent_channel: str
    purpose: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("consent", {})[
            topic(self.consent_channel, self.purpose)] = {
            "state": "expired", "since": self.occurred_at.isoformat(), "expires_at": None}


class CampaignEmailQueued(Customer.BusinessEvent):
    """The email queued beside it (same Message-ID) belongs to a campaign: a marketing send."""

    campaign_id: str
    message_id: str
    purpose: str
    unsubscribe_url: str

    def apply(self, aggregate: Any) -> None:
        aggregate.area(AREA).setdefault("campaigns", {})[self.campaign_id] = self.message_id


class CampaignEmailSuppressed(Customer.BusinessEvent):
    """The outbox refused a campaign email at send time: no valid consent. Never sent."""

    campaign_id: str
    message_id: str
    purpose: str
    reason: str


# -- rules ---------------------------------------------------------------------------------
def consent_valid(area: dict[str, Any], channel: str, purpose: str, at: datetime) -> bool:
    """True when ``channel:purpose`` consent is given and not past its expiry at ``at``."""
    found = area.get("consent", {}).get(topic(channel, purpose))
    if not found or found["state"] != "given":
        return False
    expires = found.get("expires_at")
    return expires is None or at < datetime.fromisoformat(expires)


def give_consent(customer: Customer, prov: Provenance, channel: str, purpose: str,
                 evidence_kind: str, evidence_id: str | None,
                 expires_at: datetime | None) -> None:
    check_topic(channel, purpose)
    if evidence_kind not in EVIDENCE_KINDS:
        raise InvalidConsentError(
            f"evidence kind {evidence_kind!r}; one of: {', '.join(EVIDENCE_KINDS)}")
    if expires_at is not None and expires_at <= prov.occurred_at:
        raise InvalidConsentError("the consent would expire before it was given")
    customer.record_business(ConsentGiven, prov, consent_channel=channel, purpose=purpose,
                             evidence_kind=evidence_kind, evidence_id=evidence_id,
                             expires_at=expires_at)


def withdraw_consent(customer: Customer, prov: Provenance, channel: str, purpose: str,
                     reason: str, campaign_id: str | None = None) -> bool:
    """Withdraw a given consent; False (nothing recorded) when none is given: a second
    unsubscribe click is not a second withdrawal."""
    check_topic(channel, purpose)
    if reason not in WITHDRAW_REASONS:
        raise InvalidConsentError(f"reason {reason!r}; one of: {', '.join(WITHDRAW_REASONS)}")
    current = customer.area(AREA).get("consent", {}).get(topic(channel, purpose))
    if not current or current["state"] != "given":
        return False
    customer.record_business(ConsentWithdrawn, prov, consent_channel=channel, purpose=purpose,
                             reason=reason, campaign_id=campaign_id)
    return True


def expire_consents(customer: Customer, provs: Any, at: datetime) -> int:
    """Record ``ConsentExpired`` for each given consent whose expiry is at or before ``at``."""
    count = 0
    for key, state in sorted(customer.area(AREA).get("consent", {}).items()):
        expires = state.get("expires_at")
        if state["state"] == "given" and expires and datetime.fromisoformat(expires) <= at:
            channel, _, purpose = key.partition(":")
            customer.record_business(ConsentExpired, next(provs), consent_channel=channel,
                                     purpose=purpose)
            count += 1
    return count


def request_consent(customer: Customer, prov: Provenance, request_id: str, channel: str,
                    purpose: str, evidence_kind: str, evidence_id: str | None) -> None:
    check_topic(channel, purpose)
    customer.record_business(ConsentRequested, prov, consent_request_id=request_id,
                             consent_channel=channel, purpose=purpose,
                             evidence_kind=evidence_kind, evidence_id=evidence_id)


def confirm_consent(customer: Customer, prov: Provenance, request_id: str,
                    expires_at: datetime | None) -> bool:
    """Give the consent a pending double opt-in asked for; False when it was confirmed
    already (the link clicked twice)."""
    area = customer.area(AREA)
    pending = area.get("requests", {}).get(request_id)
    if pending is None:
        if request_id in area.get("confirmed", {}):  # the link clicked twice
            return False
        raise ConsentRequestUnknownError(f"no pending consent request {request_id}")
    channel, _, purpose = pending.partition(":")
    give_consent(customer, prov, channel, purpose, "double-opt-in", request_id, expires_at)
    return True


def is_hard_bounce(action: str, status: str | None) -> bool:
    """A permanent failure (RFC 3464 action ``failed`` with a 5.x.x status)."""
    return action == "failed" and (status or "5").startswith("5")


def withdraw_on_hard_bounce(customer: Customer, provs: Any, action: str,
                            status: str | None) -> int:
    """A hard bounce withdraws every email consent the customer gave (the address is dead)."""
    if not is_hard_bounce(action, status):
        return 0
    count = 0
    for key, state in sorted(customer.area(AREA).get("consent", {}).items()):
        channel, _, purpose = key.partition(":")
        if channel == "email" and state["state"] == "given":
            withdraw_consent(customer, next(provs), channel, purpose, "hard-bounce")
            count += 1
    return count


def suppress_unless_consented(customer: Customer, prov: Provenance, campaign_id: str,
                              message_id: str, purpose: str) -> bool:
    """At send time: True (and ``CampaignEmailSuppressed`` recorded) when the customer has
    no valid email consent for ``purpose`` at ``prov.occurred_at``."""
    if consent_valid(customer.area(AREA), "email", purpose, prov.occurred_at):
        return False
    current = customer.area(AREA).get("consent", {}).get(topic("email", purpose))
    reason = f"consent {current['state']}" if current else "no consent"
    customer.record_business(CampaignEmailSuppressed, prov, campaign_id=campaign_id,
                             message_id=message_id, purpose=purpose, reason=reason)
    return True


# -- campaigns -----------------------------------------------------------------------------
class Campaign(Record):
    """A campaign: what it costs, when it runs, whom it targets, how responses find it."""

    class Defined(Record.Created):
        name: str
        channel: str
        purpose: str
        budget: str
        currency: str
        starts_on: str
        ends_on: str
        segment_id: str | None
        code: str
        tracked_number: str | None
        attribution_window_days: int

    class Launched(Record.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.state = "launched"
            aggregate.__dict__["launched_at"] = self.occurred_at

    class Closed(Record.Event):
        def apply(self, aggregate: Any) -> None:
            aggregate.state = "closed"
            aggregate.__dict__["closed_at"] = self.occurred_at

    def __init__(self, name: str, channel: str, purpose: str, budget: str, currency: str,
                 starts_on: str, ends_on: str, segment_id: str | None, code: str,
                 tracked_number: str | None, attribution_window_days: int, **_: Any) -> None:
        self.name = name
        self.channel = channel
        self.purpose = purpose
        self.budget = budget
        self.currency = currency
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.segment_id = segment_id
        self.code = code
        self.tracked_number = tracked_number
        self.attribution_window_days = attribution_window_days
        self.state = "defined"

    def launch(self, fields: dict[str, Any]) -> None:
        if self.state != "defined":
            raise CampaignStateError(f"campaign {self.id} is {self.state}; only a defined "
                                     "campaign can be launched")
        self.trigger_event(self.Launched, **fields)

    def close(self, fields: dict[str, Any]) -> None:
        if self.state != "launched":
            raise CampaignStateError(f"campaign {self.id} is {self.state}; only a launched "
                                     "campaign can be closed")
        self.trigger_event(self.Closed, **fields)

    def check_sendable(self, at: datetime) -> None:
        """A campaign sends between its launch and its close: an email recorded late (a
        history import) still counts when it went out while the campaign ran."""
        launched = self.__dict__.get("launched_at")
        closed = self.__dict__.get("closed_at")
        if launched is None or at < launched or (closed is not None and at >= closed):
            raise CampaignStateError(f"campaign {self.id} is {self.state} at "
                                     f"{at.isoformat()}; only a launched campaign sends")
        if self.channel != "email":
            raise CampaignStateError(f"campaign {self.id} is a {self.channel} campaign; only "
                                     "email campaigns send email")


def check_campaign(channel: str, purpose: str, starts_on: str, ends_on: str,
                   window_days: int) -> None:
    if channel not in CAMPAIGN_CHANNELS:
        raise CampaignStateError(f"channel {channel!r}; one of: {', '.join(CAMPAIGN_CHANNELS)}")
    if purpose not in ("marketing", "newsletter"):
        raise CampaignStateError("purpose is marketing or newsletter")
    if ends_on < starts_on:
        raise CampaignStateError("the campaign ends before it starts")
    if not 0 <= window_days <= 365:
        raise CampaignStateError("the attribution window is 0–365 days")


# -- attribution ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Touch:
    """A campaign reaching a customer (an email sent to them, a response to it)."""

    campaign_id: str
    at: datetime


def in_window(touch_at: datetime, response_at: datetime, window: timedelta) -> bool:
    """A response counts for a touch when it comes after it and within the window."""
    return timedelta(0) <= response_at - touch_at <= window


def in_period(starts_on: str, ends_on: str, window_days: int, at: datetime) -> bool:
    """A response naming the campaign (code, tracked number) counts from its first day to
    ``window_days`` after its last (dates are UTC calendar days)."""
    day = at.date().isoformat()
    last = (datetime.fromisoformat(ends_on) + timedelta(days=window_days)).date().isoformat()
    return starts_on <= day <= last


def first_and_last(touches: list[Touch], at: datetime,
                   windows: dict[str, timedelta]) -> tuple[str | None, str | None]:
    """First-touch and last-touch campaigns for something at ``at``: among the touches
    before it, within each campaign's own window, the earliest and the latest (ties: the
    smaller campaign id, so the answer does not depend on input order)."""
    live = sorted((t.at, t.campaign_id) for t in touches
                  if in_window(t.at, at, windows.get(t.campaign_id, timedelta(0))))
    if not live:
        return None, None
    last_at = live[-1][0]
    last = min(c for a, c in live if a == last_at)
    return live[0][1], last


# -- segments: the rule language -----------------------------------------------------------
@dataclass(frozen=True)
class CustomerFacts:
    """What a segment rule can ask about a customer."""

    lifecycle_stage: str
    partner_id: str | None = None
    last_contact: datetime | None = None
    touches: dict[str, int] = field(default_factory=dict)
    consents: dict[str, datetime | None] = field(default_factory=dict)  # given: expiry
    rfm: tuple[int, int, int] | None = None  # (r, f, m) quintiles on the day asked; None: no order


_RFM_BOUNDS = ("r_min", "r_max", "f_min", "f_max", "m_min", "m_max")


_OPS = ("all", "any", "not", "lifecycle", "channel_activity", "consent", "partner",
        "last_contact_older_than_days", "rfm")


def check_rule(rule: Any, depth: int = 0) -> None:
    """Refuse anything that is not a rule (see README, Marketing: segments)."""
    if depth > 8:
        raise InvalidSegmentRuleError("rules nest at most 8 deep")
    if not isinstance(rule, dict) or len(rule) != 1:
        raise InvalidSegmentRuleError(f"a rule is an object with one of: {', '.join(_OPS)}")
    (op, arg), = rule.items()
    if op in ("all", "any"):
        if not isinstance(arg, list) or not arg or len(arg) > 50:
            raise InvalidSegmentRuleError(f"{op!r} takes a list of 1–50 rules")
        for sub in arg:
            check_rule(sub, depth + 1)
    elif op == "not":
        check_rule(arg, depth + 1)
    elif op == "lifecycle":
        if not isinstance(arg, list) or not arg or not set(arg) <= set(LIFECYCLE_STAGES):
            raise InvalidSegmentRuleError(
                f"'lifecycle' takes a list of stages: {', '.join(LIFECYCLE_STAGES)}")
    elif op == "channel_activity":
        if (not isinstance(arg, dict) or set(arg) - {"channel", "min_touches"}
                or not isinstance(arg.get("channel"), str)
                or not isinstance(arg.get("min_touches", 1), int)
                or arg.get("min_touches", 1) < 0):
            raise InvalidSegmentRuleError(
                "'channel_activity' takes {\"channel\": \"email\", \"min_touches\": 1}")
    elif op == "consent":
        if not isinstance(arg, str) or tuple(arg.partition(":")[::2]) not in CONSENT_TOPICS:
            raise InvalidSegmentRuleError(
                "'consent' takes one of: "
                + ", ".join(sorted(topic(c, p) for c, p in CONSENT_TOPICS)))
    elif op == "partner":
        if arg is not None and not isinstance(arg, str):
            raise InvalidSegmentRuleError("'partner' takes a partner id or null (none)")
    elif op == "last_contact_older_than_days":
        if not isinstance(arg, int) or isinstance(arg, bool) or not 0 <= arg <= 36500:
            raise InvalidSegmentRuleError(
                "'last_contact_older_than_days' takes a whole number of days")
    elif op == "rfm":
        if (not isinstance(arg, dict) or not arg or set(arg) - set(_RFM_BOUNDS)
                or any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5
                       for v in arg.values())):
            raise InvalidSegmentRuleError(
                "'rfm' takes bounds 1–5 from: " + ", ".join(_RFM_BOUNDS)
                + ' (e.g. {"r_min": 4, "f_min": 3})')
    else:
        raise InvalidSegmentRuleError(f"unknown rule {op!r}; one of: {', '.join(_OPS)}")


def matches(rule: dict[str, Any], facts: CustomerFacts, as_of: datetime) -> bool:
    """Whether a customer with ``facts`` is in the segment ``rule`` describes at ``as_of``."""
    (op, arg), = rule.items()
    if op == "all":
        return all(matches(r, facts, as_of) for r in arg)
    if op == "any":
        return any(matches(r, facts, as_of) for r in arg)
    if op == "not":
        return not matches(arg, facts, as_of)
    if op == "lifecycle":
        return facts.lifecycle_stage in arg
    if op == "channel_activity":
        return facts.touches.get(arg["channel"], 0) >= arg.get("min_touches", 1)
    if op == "consent":
        if arg not in facts.consents:
            return False
        expires = facts.consents[arg]
        return expires is None or as_of < expires
    if op == "partner":
        return facts.partner_id == arg
    if op == "last_contact_older_than_days":
        # Never contacted counts as older than any number of days.
        return facts.last_contact is None or as_of - facts.last_contact > timedelta(days=arg)
    if op == "rfm":
        # A customer without an order by then has no scores: no RFM bound matches them.
        return facts.rfm is not None and all(
            arg.get(f"{k}_min", 1) <= score <= arg.get(f"{k}_max", 5)
            for k, score in zip("rfm", facts.rfm, strict=True))
    raise InvalidSegmentRuleError(f"unknown rule {op!r}")


class Segment(Record):
    """A named rule; its members are evaluated by the segments read model."""

    class Defined(Record.Created):
        name: str
        rule: dict[str, Any]

    class Redefined(Record.Event):
        name: str
        rule: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name
            aggregate.rule = self.rule

    def __init__(self, name: str, rule: dict[str, Any], **_: Any) -> None:
        self.name = name
        self.rule = rule
