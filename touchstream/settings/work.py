"""Work settings (``TOUCHSTREAM_WORK_*``): follow-up rules, routing rules, the roster,
the calendar feeds' secret and the work policies' pace."""

from __future__ import annotations

import tomllib
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from domain.work import (
    DAYS,
    FOLLOW_UP_TRIGGERS,
    ITEM_KINDS,
    STRATEGIES,
    TASK_KINDS,
    AssignmentRule,
    CommissionRates,
    FollowUpRule,
    Roster,
    Shift,
    Staff,
    TerritoryDef,
    WorkPolicy,
)
from touchstream.settings.base import Section

WORK_FILE_HELP = """A work file (TOML):

    zone = "Europe/Berlin"            # the roster's shift times are local to it

    [[staff]]
    id = "jo"
    team = "service"
    skills = ["billing"]
    languages = ["de", "en"]
    shifts = [{days = ["mon", "tue", "wed", "thu", "fri"], start = "08:00", end = "16:00"}]

    [[rules]]                         # routing, first match with someone on shift wins
    name = "billing-de"
    applies_to = ["case", "task"]
    channels = ["email"]              # each criterion empty or absent: any
    queues = ["billing"]
    categories = []
    partners = []
    territories = ["DE-1", "AT"]      # country, or country-postcode prefix
    languages = ["de"]
    skill = "billing"
    strategy = "least-loaded"         # or "round-robin"

    [[follow_ups]]                    # tasks created by themselves
    name = "complaint-care"
    trigger = "complaint-resolved"    # or "deal-won"
    after_days = 7
    task_kind = "call"
    title = "Follow-up call after the complaint"
    queue = "follow-up"

    [[territories]]                   # sales territories; the first match wins
    name = "berlin"
    prefixes = ["DE-10", "DE-12"]     # country, or country-postcode prefix
    owner = "sam"                     # reassign with `touchstream territories reassign`

    [commissions]                     # won amount × rate, per owner (read time)
    default_rate = "0.03"
    rates = { sam = "0.05" }
"""

DEFAULT_POLICY = WorkPolicy(follow_ups=(
    FollowUpRule("complaint-care", "complaint-resolved", 7, "call",
                 "Follow-up call after the complaint", "follow-up"),
    FollowUpRule("won-deal-care", "deal-won", 14, "call", "Follow-up call after the order",
                 "follow-up"),
), territories=(  # the demo region's (GB); a work file without [[territories]] has none
    TerritoryDef("north", ("GB-NE", "GB-M", "GB-LS", "GB-L"), "lee"),
    TerritoryDef("london", ("GB-EC", "GB-WC", "GB-SW", "GB-SE", "GB-NW", "GB-N", "GB-E",
                            "GB-W"), "sam"),
    TerritoryDef("rest-of-gb", ("GB",), "mia"),
))


class WorkSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_WORK_")
    title = "Work (tasks, routing)"

    file: Path | None = Field(None, description=(
        "TOML file with the roster (`[[staff]]` id, team, skills, languages, shifts), routing "
        "rules (`[[rules]]`: channels, queues, categories, partners, territories, languages, "
        "skill, strategy round-robin/least-loaded) and follow-up rules (`[[follow_ups]]`); "
        "default: no roster or routing, a follow-up call 7 days after a resolved complaint "
        "and 14 days after a won deal; `[commissions]` default_rate and per-owner rates "
        "(fractions) for the commissions read model, default 0; `[[territories]]` name, "
        "prefixes (country or country-postcode) and owner for sales territories."))
    feed_secret: SecretStr | None = Field(None, description=(
        "Signs the per-staff calendar feed links (`GET /calendar/{staff}.ics?token=…`); "
        "changing it revokes every link given out. Unset: the feeds are off."))
    policies: bool = Field(True, description=(
        "Run the work policies (follow-up tasks, routing of new cases and tasks) beside the "
        "API in `touchstream serve`; `touchstream tasks react` runs them once."))
    poll_seconds: float = Field(2.0, ge=0.05, description=(
        "How often the work policies look for new triggers and unrouted items."))

    auto_ack_from: str | None = Field(None, description=(
        "From address of the automatic acknowledgement of a new case opened from an email "
        "or a web form (RFC 3834 rules: never to auto-submitted, bulk or list mail, never "
        "to an address that bounced); unset: no acknowledgements."))
    auto_ack_template: str = Field("auto-ack", description=(
        "Name of the message template the acknowledgement is rendered from "
        "(`touchstream templates save`); it sees `subject`, `customer`, `case`."))
    auto_ack_window_days: int = Field(4, ge=0, le=365, description=(
        "At most one automatic acknowledgement per address in this many days."))
    auto_ack_max_age_hours: float = Field(48.0, gt=0, description=(
        "Cases opened longer ago than this are not acknowledged (turning the policy on "
        "must not answer the whole history)."))

    _policy: WorkPolicy = PrivateAttr(DEFAULT_POLICY)

    @model_validator(mode="after")
    def _read_file(self) -> WorkSettings:
        if self.file is not None:
            try:
                self._policy = policy_from(tomllib.loads(self.file.read_text()))
            except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"TOUCHSTREAM_WORK_FILE {str(self.file)!r}: {exc}") from exc
        return self

    def policy(self) -> WorkPolicy:
        return self._policy


def _strings(entry: dict[str, Any], key: str, allowed: tuple[str, ...] | None = None) -> tuple[
        str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings")
    if allowed is not None and (bad := [v for v in value if v not in allowed]):
        raise ValueError(f"{key}: {bad} not among {list(allowed)}")
    return tuple(value)


def _known(entry: dict[str, Any], keys: set[str], what: str) -> None:
    if unknown := set(entry) - keys:
        raise ValueError(f"{what}: unknown keys {sorted(unknown)}")


def _shift(raw: dict[str, Any]) -> Shift:
    _known(raw, {"days", "start", "end"}, "shift")
    return Shift(_strings(raw, "days", DAYS), time.fromisoformat(raw["start"]),
                 time.fromisoformat(raw["end"]))


def _staff(raw: dict[str, Any]) -> Staff:
    _known(raw, {"id", "team", "skills", "languages", "shifts"}, "staff")
    return Staff(str(raw["id"]), str(raw.get("team", "default")),
                 frozenset(_strings(raw, "skills")),
                 frozenset(v.lower() for v in _strings(raw, "languages")),
                 tuple(_shift(s) for s in raw.get("shifts", [])))


def _rule(raw: dict[str, Any]) -> AssignmentRule:
    _known(raw, {"name", "applies_to", "channels", "queues", "categories", "partners",
                 "territories", "languages", "skill", "strategy"}, "rule")
    strategy = str(raw.get("strategy", "least-loaded"))
    if strategy not in STRATEGIES:
        raise ValueError(f"rule {raw['name']}: strategy {strategy!r} not among {STRATEGIES}")
    return AssignmentRule(
        name=str(raw["name"]), applies_to=_strings(raw, "applies_to", ITEM_KINDS) or ITEM_KINDS,
        channels=_strings(raw, "channels"), queues=_strings(raw, "queues"),
        categories=_strings(raw, "categories"), partners=_strings(raw, "partners"),
        territories=_strings(raw, "territories"),
        languages=tuple(v.lower() for v in _strings(raw, "languages")),
        skill=raw.get("skill"), strategy=strategy)


def _follow_up(raw: dict[str, Any]) -> FollowUpRule:
    _known(raw, {"name", "trigger", "after_days", "task_kind", "title", "queue"}, "follow-up")
    rule = FollowUpRule(str(raw["name"]), str(raw["trigger"]), int(raw.get("after_days", 7)),
                        str(raw.get("task_kind", "call")), str(raw.get("title", "Follow-up call")),
                        str(raw.get("queue", "follow-up")))
    if rule.trigger not in FOLLOW_UP_TRIGGERS:
        raise ValueError(f"follow-up {rule.name}: trigger {rule.trigger!r} not among "
                         f"{FOLLOW_UP_TRIGGERS}")
    if rule.task_kind not in TASK_KINDS or rule.after_days < 0:
        raise ValueError(f"follow-up {rule.name}: task_kind one of {TASK_KINDS}, after_days ≥ 0")
    return rule


def policy_from(data: dict[str, Any]) -> WorkPolicy:
    """The work policy of a parsed work file (``ValueError`` naming what is wrong)."""
    _known(data, {"zone", "staff", "rules", "follow_ups", "commissions", "territories"},
           "work file")
    zone = str(data.get("zone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {zone!r}") from exc
    staff = tuple(_staff(s) for s in data.get("staff", []))
    rules = tuple(_rule(r) for r in data.get("rules", []))
    follow_ups = tuple(_follow_up(f) for f in data.get("follow_ups", DEFAULT_FOLLOW_UPS))
    territories = tuple(_territory(t) for t in data.get("territories", []))
    for what, names in (("staff", [s.id for s in staff]), ("rules", [r.name for r in rules]),
                        ("follow_ups", [f.name for f in follow_ups]),
                        ("territories", [t.name.lower() for t in territories])):
        if len(set(names)) != len(names):
            raise ValueError(f"{what}: names must be unique")
    return WorkPolicy(follow_ups=follow_ups, rules=rules, roster=Roster(zone, staff),
                      commissions=_commissions(data.get("commissions", {})),
                      territories=territories)


def _territory(raw: dict[str, Any]) -> TerritoryDef:
    _known(raw, {"name", "prefixes", "owner"}, "territory")
    prefixes = _strings(raw, "prefixes")
    if not prefixes or not str(raw.get("owner", "")).strip():
        raise ValueError(f"territory {raw.get('name')!r}: needs prefixes and an owner")
    return TerritoryDef(str(raw["name"]), tuple(p.upper() for p in prefixes), str(raw["owner"]))


def _rate(value: Any, what: str) -> Decimal:
    try:
        rate = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{what}: not a decimal: {value!r}") from exc
    if not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"{what}: a rate is a fraction 0–1 (0.05 = 5 %), not {value!r}")
    return rate


def _commissions(raw: dict[str, Any]) -> CommissionRates:
    _known(raw, {"default_rate", "rates"}, "commissions")
    return CommissionRates(_rate(raw.get("default_rate", "0"), "commissions.default_rate"),
                           {str(k): _rate(v, f"commissions.rates.{k}")
                            for k, v in raw.get("rates", {}).items()})


DEFAULT_FOLLOW_UPS = [
    {"name": r.name, "trigger": r.trigger, "after_days": r.after_days,
     "task_kind": r.task_kind, "title": r.title, "queue": r.queue}
    for r in DEFAULT_POLICY.follow_ups]
