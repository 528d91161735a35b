"""Customer value and retention — pure rules: cohorts, churn, historic CLV, the value pyramid.

No clock and no I/O: the as-of day and every setting are arguments; the read
side gathers the facts (``projections/value``) and calls these. RFM quintiles
are ``domain.rfm`` (one implementation).

**Cohorts.** A customer's cohort is the month of their first purchase (an order
placed and not cancelled), otherwise the month their lifecycle stage first
became ``current``; customers with neither belong to no cohort. In each month
from their cohort month to the as-of month a member is *active* unless

* they are explicitly lost: their last stage move by the month's end (or the
  as-of day) was to ``lost`` and no purchase and no move to ``current`` came
  after it; or
* nothing happened for ``window_months``: no purchase, no interaction and no
  move to ``current`` in that month or the ``window_months − 1`` months before.

A member who becomes active again (buys after a loss, or is heard from after
a silence) counts as active again (``returned``). Per cohort and period
(months since the cohort month): ``active``, ``churned`` (active the period
before, not now), ``returned`` (the reverse); ``churn_rate`` = churned ÷ active
the period before, ``retention_rate`` = 1 − churn_rate (None when nobody was
active the period before), ``share`` = active ÷ cohort size (the classic
triangle's cell).

**Historic CLV** (past customer value): each month's revenue (orders placed
less refunds, in one currency) times the margin, carried to the as-of month at
the annual rate: a margin earned *k* months before the as-of month counts
``margin × (1 + rate) ** (k / 12)``; rounded half-up to the currency's minor
unit at the end.

**Value pyramid.** Customers ordered by revenue (highest first; equal revenue
shares a tier, the one of the first of them); a customer's tier is the first
band whose cumulative share of the total revenue is above the share the
customers before them already make up (default bands key 50 %, major 80 %,
ordinary 95 %, the rest small). A customer with no positive revenue is small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

PURCHASE = "purchase"
INTERACTION = "interaction"
STAGE = "stage"
TIERS = ("key", "major", "ordinary", "small")
DEFAULT_BANDS: tuple[tuple[str, Decimal], ...] = (
    ("key", Decimal("0.50")), ("major", Decimal("0.80")), ("ordinary", Decimal("0.95")))


@dataclass(frozen=True)
class ValuePolicy:
    """The settings the value figures are computed with (``TOUCHSTREAM_VALUE_*``)."""

    churn_window_months: int = 6
    count_outbound: bool = False
    margin: Decimal = Decimal("0.30")
    discount_rate: Decimal = Decimal("0.10")
    currency: str = "EUR"
    bands: tuple[tuple[str, Decimal], ...] = DEFAULT_BANDS


# -- months ------------------------------------------------------------------

def month_of(moment: date | datetime) -> str:
    """``"2026-03"`` for any day or time in March 2026."""
    return f"{moment.year:04d}-{moment.month:02d}"


def month_index(month: str) -> int:
    """Months since year 0 (``"2026-03"`` → 24315): differences are month counts."""
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def month_at(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# -- cohorts -----------------------------------------------------------------

@dataclass(frozen=True)
class Activity:
    """One fact the cohort rules read: a purchase, an interaction or a stage move.

    ``ref`` is the event behind it (drill-down); ``stage`` the stage moved to."""

    customer_id: str
    at: datetime
    kind: str
    stage: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class CohortCell:
    cohort: str
    period: int
    month: str
    size: int
    active: int
    churned: int
    returned: int
    churn_rate: float | None
    retention_rate: float | None
    share: float


@dataclass(frozen=True)
class Cohorts:
    """The triangle (``cells`` by cohort then period), each member's cohort, and each
    member's active months (for drill-down)."""

    cells: list[CohortCell]
    cohort_of: dict[str, str]
    active: dict[str, list[bool]] = field(repr=False)  # per member, from its cohort month

    def members(self, cohort: str, period: int, status: str = "all") -> list[str]:
        """The members of ``cohort`` who are ``active``, ``churned``, ``returned`` or
        ``inactive`` in ``period`` (``all``: every member), by id."""
        out = []
        for cid in sorted(c for c, co in self.cohort_of.items() if co == cohort):
            flags = self.active[cid]
            if period >= len(flags):
                continue
            now, before = flags[period], (flags[period - 1] if period else None)
            if (status == "all" or (status == "active" and now)
                    or (status == "inactive" and not now)
                    or (status == "churned" and before and not now)
                    or (status == "returned" and before is False and now)):
                out.append(cid)
        return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def cohort_month(activities: Sequence[Activity]) -> str | None:
    """The member's cohort: first purchase's month, else first move to ``current``."""
    purchases = [a.at for a in activities if a.kind == PURCHASE]
    if purchases:
        return month_of(min(purchases))
    current = [a.at for a in activities if a.kind == STAGE and a.stage == "current"]
    return month_of(min(current)) if current else None


def active_flags(activities: Sequence[Activity], cohort: str, as_of: date,
                 window_months: int) -> list[bool]:
    """Active or not in each month from ``cohort`` to ``as_of``'s month (see the module)."""
    first, last = month_index(cohort), month_index(month_of(as_of))
    touched: set[int] = set()
    lost_at: dict[int, bool] = {}  # month index → lost at that month's end
    lost = False
    for a in sorted(activities, key=lambda a: a.at):
        m = month_index(month_of(a.at))
        if a.kind == PURCHASE or a.kind == INTERACTION or (a.kind == STAGE
                                                            and a.stage == "current"):
            touched.add(m)
        if a.kind == STAGE:
            lost = a.stage == "lost" or (lost and a.stage != "current")
        elif a.kind == PURCHASE:
            lost = False
        lost_at[m] = lost
    earlier = [m for m in lost_at if m < first]
    flags, lost = [], lost_at[max(earlier)] if earlier else False
    for m in range(first, last + 1):
        lost = lost_at.get(m, lost)
        recent = any(k in touched for k in range(m - window_months + 1, m + 1))
        flags.append(recent and not lost)
    return flags


def cohorts(activities: Iterable[Activity], as_of: date, window_months: int) -> Cohorts:
    """The cohort triangle as of ``as_of`` (activities after it are ignored)."""
    if window_months < 1:
        raise ValueError("window_months must be at least 1")
    per: dict[str, list[Activity]] = {}
    for a in activities:
        if a.at.date() <= as_of:
            per.setdefault(a.customer_id, []).append(a)
    cohort_of: dict[str, str] = {}
    active: dict[str, list[bool]] = {}
    for cid, acts in per.items():
        cohort = cohort_month(acts)
        if cohort is not None:
            cohort_of[cid] = cohort
            active[cid] = active_flags(acts, cohort, as_of, window_months)
    cells = []
    for cohort in sorted(set(cohort_of.values())):
        flags = [active[c] for c, co in cohort_of.items() if co == cohort]
        size = len(flags)
        for period in range(len(flags[0])):
            now = sum(f[period] for f in flags)
            before = sum(f[period - 1] for f in flags) if period else 0
            churned = sum(f[period - 1] and not f[period] for f in flags) if period else 0
            returned = sum(not f[period - 1] and f[period] for f in flags) if period else 0
            churn = _rate(churned, before) if period else None
            cells.append(CohortCell(
                cohort=cohort, period=period, month=month_at(month_index(cohort) + period),
                size=size, active=now, churned=churned, returned=returned, churn_rate=churn,
                retention_rate=None if churn is None else round(1 - churn, 4),
                share=round(now / size, 4)))
    return Cohorts(cells, cohort_of, active)


# -- value -------------------------------------------------------------------

@dataclass(frozen=True)
class Revenue:
    """Revenue of one customer at one time: an order's total, or a refund (negative)."""

    customer_id: str
    at: datetime
    amount: Decimal
    ref: str | None = None


def historic_clv(revenues: Iterable[Revenue], as_of: date, margin: Decimal,
                 annual_rate: Decimal, digits: int = 2) -> dict[str, Decimal]:
    """Each customer's margins carried to ``as_of``'s month at ``annual_rate`` (see module)."""
    if not Decimal(0) <= margin <= Decimal(1):
        raise ValueError("margin is a share of revenue, 0–1")
    if annual_rate <= Decimal(-1):
        raise ValueError("annual_rate must be above -1")
    end = month_index(month_of(as_of))
    per_month: dict[tuple[str, int], Decimal] = {}
    for r in revenues:
        if r.at.date() <= as_of:
            key = (r.customer_id, month_index(month_of(r.at)))
            per_month[key] = per_month.get(key, Decimal(0)) + r.amount
    raw: dict[str, Decimal] = {}
    growth = Decimal(1) + annual_rate
    for (cid, m), amount in per_month.items():
        factor = growth ** (Decimal(end - m) / Decimal(12))
        raw[cid] = raw.get(cid, Decimal(0)) + amount * margin * factor
    step = Decimal(1).scaleb(-digits)
    return {cid: v.quantize(step, rounding=ROUND_HALF_UP) for cid, v in sorted(raw.items())}


def check_bands(bands: Sequence[tuple[str, Decimal]]) -> None:
    """Bands rise strictly within (0, 1] and name the tiers before ``small`` in order."""
    if [name for name, _ in bands] != list(TIERS[: len(bands)]):
        raise ValueError(f"bands name the tiers {TIERS[:-1]} in order")
    shares = [s for _, s in bands]
    if any(not Decimal(0) < s <= Decimal(1) for s in shares) or shares != sorted(set(shares)):
        raise ValueError(f"band shares must rise strictly within (0, 1]: {shares}")


def pyramid(revenue: Mapping[str, Decimal],
            bands: Sequence[tuple[str, Decimal]] = DEFAULT_BANDS) -> dict[str, str]:
    """Each customer's tier by cumulative revenue share (see the module)."""
    check_bands(bands)
    positive = {c: v for c, v in revenue.items() if v > 0}
    total = sum(positive.values(), Decimal(0))
    tiers = {c: "small" for c in revenue}
    before = Decimal(0)
    tier_of_value: dict[Decimal, str] = {}
    for cid, value in sorted(positive.items(), key=lambda kv: (-kv[1], kv[0])):
        if value not in tier_of_value:
            share = before / total
            tier_of_value[value] = next((name for name, top in bands if share < top), "small")
        tiers[cid] = tier_of_value[value]
        before += value
    return tiers


@dataclass(frozen=True)
class TierSummary:
    tier: str
    customers: int
    revenue: Decimal
    share: float


def tier_summary(revenue: Mapping[str, Decimal], tiers: Mapping[str, str]
                 ) -> list[TierSummary]:
    """Customers, revenue and share of the total per tier, key first."""
    total = sum((v for v in revenue.values() if v > 0), Decimal(0))
    out = []
    for tier in TIERS:
        members = [c for c, t in tiers.items() if t == tier]
        amount = sum((revenue[c] for c in members), Decimal(0))
        out.append(TierSummary(tier, len(members), amount,
                               round(float(amount / total), 4) if total else 0.0))
    return out
