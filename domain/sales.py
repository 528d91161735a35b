"""Sales on the customer's stream: opportunities, quotes and orders.

Every change is an event (``Customer.BusinessEvent``); nothing is overwritten.
The rules are pure functions over the customer's sales state
(``customer.area("sales")``: ids, stages, amounts as strings, dates as ISO
text, nothing personal) and a ``Pipeline`` (stages and probabilities from the
settings, given by the caller). Money is ``Decimal`` here and a string plus an
ISO 4217 currency in events; a float never enters: ``money`` refuses anything
but text, ``Decimal`` or ``int``.

A stage move records the stage's probability *at the time*, so the forecast of
the past stays what it was when the pipeline's settings change later.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain.customer import Customer, Provenance
from domain.errors import DomainError, InvalidInputError

AREA = "sales"

#: ISO 4217 currencies whose minor unit is not 1/100 (the rest have two decimals).
MINOR_UNITS: Mapping[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PLAIN_NUMBER = re.compile(r"^\d{1,15}(\.\d{1,6})?$")
MAX_QUANTITY = Decimal(1000000)


class SalesRuleError(DomainError):
    """Raised when a sales command would break a rule (the message says which and why)."""


class InvalidMoneyError(SalesRuleError, InvalidInputError):
    """Raised when an amount, quantity, discount or currency is not a valid one."""


class OrderTotalMismatchError(InvalidMoneyError):
    """Raised when an order's or quote's total differs from the sum of its lines."""


class OpportunityUnknownError(SalesRuleError):
    """Raised when a command names an opportunity the customer does not have."""


class OrderUnknownError(SalesRuleError):
    """Raised when a command names an order the customer does not have."""


# -- money -------------------------------------------------------------------

def currency_code(code: str) -> str:
    """An ISO 4217 code as three upper-case letters."""
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise InvalidMoneyError(f"currency {code!r} is not an ISO 4217 code (three capitals)")
    return code


def _exponent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency_code(currency), 2))


def money(value: str | Decimal | int, currency: str, what: str = "amount") -> Decimal:
    """A non-negative amount in ``currency``'s minor units (``"12.5"`` EUR → 12.50).

    Floats are refused (``0.1`` is not a tenth); more decimals than the currency has
    are refused rather than rounded away."""
    number = _decimal(value, what)
    step = _exponent(currency)
    if number != number.quantize(step):
        raise InvalidMoneyError(f"{what} {value} has more decimals than {currency} allows "
                                f"({-step.as_tuple().exponent})")  # type: ignore[operator]
    return number.quantize(step)


def _decimal(value: str | Decimal | int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise InvalidMoneyError(f"{what} must be a decimal string like \"1250.00\" "
                                f"(got {type(value).__name__})")
    if isinstance(value, str) and not _PLAIN_NUMBER.match(value):
        raise InvalidMoneyError(f"{what} {value!r} is not a plain non-negative decimal "
                                "(digits, optionally a point and up to 6 decimals)")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise InvalidMoneyError(f"{what} {value!r} is not a number") from exc
    if not number.is_finite() or number < 0:
        raise InvalidMoneyError(f"{what} {value} must be a finite amount ≥ 0")
    return number


def text(amount: Decimal) -> str:
    """An amount as events store it (``"1250.00"``)."""
    return format(amount, "f")


@dataclass(frozen=True)
class Line:
    """One line of a quote or order; ``discount`` is a percentage of the line (0–100)."""

    product_code: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal

    def total(self, currency: str) -> Decimal:
        gross = self.quantity * self.unit_price * (Decimal(100) - self.discount) / Decimal(100)
        return gross.quantize(_exponent(currency), rounding=ROUND_HALF_UP)

    def stored(self) -> dict[str, str]:
        return {"product_code": self.product_code, "quantity": text(self.quantity),
                "unit_price": text(self.unit_price), "discount": text(self.discount)}


def line(raw: Mapping[str, Any], currency: str, number: int) -> Line:
    """A line from its stored or submitted form, checked."""
    where = f"line {number}"
    code = raw.get("product_code")
    if not isinstance(code, str) or not code.strip() or len(code) > 100:
        raise InvalidMoneyError(f"{where}: product_code must be 1–100 characters")
    quantity = _decimal(raw.get("quantity"), f"{where} quantity")  # type: ignore[arg-type]
    if quantity == 0 or quantity > MAX_QUANTITY:
        raise InvalidMoneyError(f"{where}: quantity must be > 0 and ≤ {MAX_QUANTITY}")
    discount = _decimal(raw.get("discount", "0"), f"{where} discount")
    if discount > 100:
        raise InvalidMoneyError(f"{where}: discount is a percentage, 0–100 (got {discount})")
    price = money(raw.get("unit_price"), currency, f"{where} unit_price")  # type: ignore[arg-type]
    return Line(code.strip(), quantity, price, discount)


def checked_lines(raw: Sequence[Mapping[str, Any]], currency: str,
                  total: str | Decimal | None) -> tuple[list[Line], Decimal]:
    """The lines and their total; a given ``total`` must equal the lines' sum exactly."""
    if not raw:
        raise SalesRuleError("at least one line is needed")
    lines = [line(r, currency, i) for i, r in enumerate(raw, start=1)]
    computed = sum((ln.total(currency) for ln in lines), Decimal(0)).quantize(
        _exponent(currency))
    if total is not None:
        given = money(total, currency, "total")
        if given != computed:
            raise OrderTotalMismatchError(
                f"total {text(given)} {currency} does not match the lines, which sum to "
                f"{text(computed)} {currency}")
    return lines, computed


# -- the pipeline ------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    name: str
    probability: int  # percent, 0–100


@dataclass(frozen=True)
class Pipeline:
    """The open stages in order, the won and lost stages, and the reasons a loss may give."""

    stages: tuple[Stage, ...]
    won: Stage = Stage("won", 100)
    lost: Stage = Stage("lost", 0)
    loss_reasons: tuple[str, ...] = ("price", "competitor", "no budget", "no decision",
                                     "timing", "product fit", "other")

    def __post_init__(self) -> None:
        names = [s.name for s in self.all_stages]
        if not self.stages:
            raise ValueError("a pipeline needs at least one open stage")
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        for s in self.all_stages:
            if not 0 <= s.probability <= 100 or not s.name.strip():
                raise ValueError(f"stage {s.name!r}: probability must be 0–100")
        if not self.loss_reasons:
            raise ValueError("a pipeline needs at least one loss reason")

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        return (*self.stages, self.won, self.lost)

    def open_stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        closed = " (use win/lose to close an opportunity)" if name in (
            self.won.name, self.lost.name) else ""
        raise SalesRuleError(f"unknown open stage {name!r}{closed}; open stages: "
                             f"{', '.join(s.name for s in self.stages)}")


DEFAULT_PIPELINE = Pipeline(stages=(
    Stage("qualification", 10), Stage("needs analysis", 20), Stage("proposal", 50),
    Stage("negotiation", 80)))


# -- state -------------------------------------------------------------------

def _state(customer: Customer) -> dict[str, Any]:
    return customer.area(AREA)


def opportunities(customer: Customer) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _state(customer).get("opportunities", {})
    return found


def orders(customer: Customer) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _state(customer).get("orders", {})
    return found


def _opportunity(customer: Customer, opportunity_id: str) -> dict[str, Any]:
    found = opportunities(customer).get(opportunity_id)
    if found is None:
        raise OpportunityUnknownError(
            f"customer {customer.id} has no opportunity {opportunity_id}")
    return found


def _open(customer: Customer, opportunity_id: str, doing: str) -> dict[str, Any]:
    opp = _opportunity(customer, opportunity_id)
    if opp["status"] != "open":
        raise SalesRuleError(f"opportunity {opportunity_id} is {opp['status']}: cannot {doing} "
                             "(reopen it first)")
    return opp


def _order(customer: Customer, order_number: str) -> dict[str, Any]:
    found = orders(customer).get(order_number)
    if found is None:
        raise OrderUnknownError(f"customer {customer.id} has no order {order_number}")
    return found


# -- events ------------------------------------------------------------------

class OpportunityOpened(Customer.BusinessEvent):
    opportunity_id: str
    title: str
    amount: str
    currency: str
    expected_close: str  # ISO date (the library's JSON transcoder has no ``date``)
    owner: str
    stage: str
    probability: int
    source_campaign_id: str | None
    account_id: str | None

    def apply(self, aggregate: Any) -> None:
        _state(aggregate).setdefault("opportunities", {})[self.opportunity_id] = {
            "status": "open", "stage": self.stage, "amount": self.amount,
            "currency": self.currency, "expected_close": self.expected_close,
            "owner": self.owner}


class OpportunityStageMoved(Customer.BusinessEvent):
    opportunity_id: str
    from_stage: str
    to_stage: str
    probability: int

    def apply(self, aggregate: Any) -> None:
        opportunities(aggregate)[self.opportunity_id]["stage"] = self.to_stage


class OpportunityChanged(Customer.BusinessEvent):
    """New amount, expected close date and/or owner; ``changed`` names which."""

    opportunity_id: str
    changed: list[str]
    amount: str
    currency: str
    expected_close: str
    owner: str

    def apply(self, aggregate: Any) -> None:
        opportunities(aggregate)[self.opportunity_id].update(
            amount=self.amount, currency=self.currency, expected_close=self.expected_close,
            owner=self.owner)


class OpportunityWon(Customer.BusinessEvent):
    opportunity_id: str
    from_stage: str
    order_reference: str
    amount: str
    currency: str
    probability: int

    def apply(self, aggregate: Any) -> None:
        opportunities(aggregate)[self.opportunity_id].update(status="won", stage="won")


class OpportunityLost(Customer.BusinessEvent):
    opportunity_id: str
    from_stage: str
    reason: str
    probability: int

    def apply(self, aggregate: Any) -> None:
        opportunities(aggregate)[self.opportunity_id].update(status="lost", stage="lost")


class OpportunityReopened(Customer.BusinessEvent):
    opportunity_id: str
    from_stage: str
    to_stage: str
    probability: int

    def apply(self, aggregate: Any) -> None:
        opportunities(aggregate)[self.opportunity_id].update(status="open", stage=self.to_stage)


class QuoteSent(Customer.BusinessEvent):
    quote_id: str
    opportunity_id: str | None
    lines: list[dict[str, str]]
    total: str
    currency: str
    valid_until: str | None  # ISO date

    def apply(self, aggregate: Any) -> None:
        _state(aggregate).setdefault("quotes", {})[self.quote_id] = {
            "total": self.total, "currency": self.currency}


class OrderPlaced(Customer.BusinessEvent):
    order_number: str
    lines: list[dict[str, str]]
    total: str
    currency: str
    opportunity_id: str | None

    def apply(self, aggregate: Any) -> None:
        _state(aggregate).setdefault("orders", {})[self.order_number] = {
            "total": self.total, "currency": self.currency, "paid": "0", "refunded": "0",
            "shipped": False, "cancelled": False}


class OrderPaid(Customer.BusinessEvent):
    order_number: str
    amount: str
    currency: str

    def apply(self, aggregate: Any) -> None:
        o = orders(aggregate)[self.order_number]
        o["paid"] = text(Decimal(o["paid"]) + Decimal(self.amount))


class OrderShipped(Customer.BusinessEvent):
    order_number: str

    def apply(self, aggregate: Any) -> None:
        orders(aggregate)[self.order_number]["shipped"] = True


class OrderReturned(Customer.BusinessEvent):
    """Goods returned and/or money refunded: ``amount`` is what was refunded."""

    order_number: str
    amount: str
    currency: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        o = orders(aggregate)[self.order_number]
        o["refunded"] = text(Decimal(o["refunded"]) + Decimal(self.amount))


class OrderCancelled(Customer.BusinessEvent):
    order_number: str
    reason: str | None

    def apply(self, aggregate: Any) -> None:
        orders(aggregate)[self.order_number]["cancelled"] = True


EVENTS: tuple[type[Customer.BusinessEvent], ...] = (
    OpportunityOpened, OpportunityStageMoved, OpportunityChanged, OpportunityWon,
    OpportunityLost, OpportunityReopened, QuoteSent, OrderPlaced, OrderPaid, OrderShipped,
    OrderReturned, OrderCancelled)


# -- decisions ---------------------------------------------------------------

def open_opportunity(customer: Customer, prov: Provenance, pipeline: Pipeline, *,
                     opportunity_id: str, title: str, amount: str, currency: str,
                     expected_close: date, owner: str, stage: str | None = None,
                     source_campaign_id: str | None = None,
                     account_id: str | None = None) -> None:
    if opportunity_id in opportunities(customer):
        raise SalesRuleError(f"opportunity {opportunity_id} exists already")
    first = pipeline.open_stage(stage) if stage else pipeline.stages[0]
    value = money(amount, currency)
    customer.record_business(
        OpportunityOpened, prov, opportunity_id=opportunity_id, title=title, amount=text(value),
        currency=currency, expected_close=expected_close.isoformat(), owner=owner,
        stage=first.name,
        probability=first.probability, source_campaign_id=source_campaign_id,
        account_id=account_id)


def move_stage(customer: Customer, prov: Provenance, pipeline: Pipeline, *,
               opportunity_id: str, to_stage: str) -> None:
    opp = _open(customer, opportunity_id, f"move it to {to_stage!r}")
    target = pipeline.open_stage(to_stage)
    if target.name == opp["stage"]:
        raise SalesRuleError(f"opportunity {opportunity_id} is in {to_stage!r} already")
    customer.record_business(OpportunityStageMoved, prov, opportunity_id=opportunity_id,
                             from_stage=opp["stage"], to_stage=target.name,
                             probability=target.probability)


def change_opportunity(customer: Customer, prov: Provenance, *, opportunity_id: str,
                       amount: str | None = None, currency: str | None = None,
                       expected_close: date | None = None, owner: str | None = None) -> None:
    """Change amount (and currency), expected close date and/or owner; nothing new: no event."""
    opp = _open(customer, opportunity_id, "change it")
    new_currency = currency or opp["currency"]
    new_amount = text(money(amount if amount is not None else opp["amount"], new_currency))
    new = {"amount": new_amount, "currency": new_currency,
           "expected_close": (expected_close.isoformat() if expected_close
                              else opp["expected_close"]),
           "owner": owner or opp["owner"]}
    changed = [k for k in ("amount", "currency", "expected_close", "owner") if new[k] != opp[k]]
    if not changed:
        return
    customer.record_business(OpportunityChanged, prov, opportunity_id=opportunity_id,
                             changed=changed, amount=new_amount, currency=new_currency,
                             expected_close=new["expected_close"], owner=new["owner"])


def win(customer: Customer, prov: Provenance, pipeline: Pipeline, *, opportunity_id: str,
        order_reference: str) -> None:
    opp = _open(customer, opportunity_id, "win it")
    customer.record_business(OpportunityWon, prov, opportunity_id=opportunity_id,
                             from_stage=opp["stage"], order_reference=order_reference,
                             amount=opp["amount"], currency=opp["currency"],
                             probability=pipeline.won.probability)


def lose(customer: Customer, prov: Provenance, pipeline: Pipeline, *, opportunity_id: str,
         reason: str) -> None:
    opp = _open(customer, opportunity_id, "lose it")
    if reason not in pipeline.loss_reasons:
        raise SalesRuleError(f"loss reason {reason!r} is not one of: "
                             f"{', '.join(pipeline.loss_reasons)}")
    customer.record_business(OpportunityLost, prov, opportunity_id=opportunity_id,
                             from_stage=opp["stage"], reason=reason,
                             probability=pipeline.lost.probability)


def reopen(customer: Customer, prov: Provenance, pipeline: Pipeline, *, opportunity_id: str,
           to_stage: str | None = None) -> None:
    opp = _opportunity(customer, opportunity_id)
    if opp["status"] == "open":
        raise SalesRuleError(f"opportunity {opportunity_id} is open: nothing to reopen")
    target = pipeline.open_stage(to_stage) if to_stage else pipeline.stages[0]
    customer.record_business(OpportunityReopened, prov, opportunity_id=opportunity_id,
                             from_stage=opp["stage"], to_stage=target.name,
                             probability=target.probability)


def send_quote(customer: Customer, prov: Provenance, *, quote_id: str,
               lines: Sequence[Mapping[str, Any]], currency: str, total: str | None,
               opportunity_id: str | None = None, valid_until: date | None = None) -> None:
    if quote_id in _state(customer).get("quotes", {}):
        raise SalesRuleError(f"quote {quote_id} was sent already")
    if opportunity_id is not None:
        _opportunity(customer, opportunity_id)
    checked, computed = checked_lines(lines, currency, total)
    customer.record_business(QuoteSent, prov, quote_id=quote_id, opportunity_id=opportunity_id,
                             lines=[ln.stored() for ln in checked], total=text(computed),
                             currency=currency,
                             valid_until=valid_until.isoformat() if valid_until else None)


def place_order(customer: Customer, prov: Provenance, *, order_number: str,
                lines: Sequence[Mapping[str, Any]], total: str, currency: str,
                opportunity_id: str | None = None) -> None:
    if order_number in orders(customer):
        raise SalesRuleError(f"order {order_number} was placed already (with another source "
                             "key); an ERP order number is placed once")
    if opportunity_id is not None:
        _opportunity(customer, opportunity_id)
    checked, computed = checked_lines(lines, currency, total)
    customer.record_business(OrderPlaced, prov, order_number=order_number,
                             lines=[ln.stored() for ln in checked], total=text(computed),
                             currency=currency, opportunity_id=opportunity_id)


def _live_order(customer: Customer, order_number: str, doing: str) -> dict[str, Any]:
    o = _order(customer, order_number)
    if o["cancelled"]:
        raise SalesRuleError(f"order {order_number} was cancelled: cannot {doing}")
    return o


def pay_order(customer: Customer, prov: Provenance, *, order_number: str,
              amount: str | None = None) -> None:
    o = _live_order(customer, order_number, "pay it")
    due = Decimal(o["total"]) - Decimal(o["paid"])
    paid = money(amount, o["currency"]) if amount is not None else due
    if due <= 0:
        raise SalesRuleError(f"order {order_number} is paid in full already")
    if paid == 0 or paid > due:
        raise SalesRuleError(f"payment {text(paid)} {o['currency']} must be > 0 and at most "
                             f"the {text(due)} {o['currency']} still due")
    customer.record_business(OrderPaid, prov, order_number=order_number, amount=text(paid),
                             currency=o["currency"])


def ship_order(customer: Customer, prov: Provenance, *, order_number: str) -> None:
    o = _live_order(customer, order_number, "ship it")
    if o["shipped"]:
        raise SalesRuleError(f"order {order_number} was shipped already")
    customer.record_business(OrderShipped, prov, order_number=order_number)


def return_order(customer: Customer, prov: Provenance, *, order_number: str, amount: str,
                 reason: str | None = None) -> None:
    o = _live_order(customer, order_number, "take a return on it")
    refund = money(amount, o["currency"])
    left = Decimal(o["total"]) - Decimal(o["refunded"])
    if refund == 0 or refund > left:
        raise SalesRuleError(f"refund {text(refund)} {o['currency']} must be > 0 and at most "
                             f"the {text(left)} {o['currency']} not yet refunded")
    customer.record_business(OrderReturned, prov, order_number=order_number,
                             amount=text(refund), currency=o["currency"], reason=reason)


def cancel_order(customer: Customer, prov: Provenance, *, order_number: str,
                 reason: str | None = None) -> None:
    o = _live_order(customer, order_number, "cancel it again")
    if o["shipped"]:
        raise SalesRuleError(f"order {order_number} was shipped: record a return instead")
    customer.record_business(OrderCancelled, prov, order_number=order_number, reason=reason)


def order_lines(event: OrderPlaced | QuoteSent) -> Iterator[Line]:
    """The lines of a recorded quote or order, as values."""
    for i, raw in enumerate(event.lines, start=1):
        yield line(raw, event.currency, i)


def to_minor(amount: str, currency: str) -> int:
    """An amount as an integer of the currency's minor units (exact sums in SQL)."""
    return int(Decimal(amount).scaleb(MINOR_UNITS.get(currency, 2)))


def from_minor(units: int, currency: str) -> str:
    """Minor units back to the amount text (``125000`` EUR → ``"1250.00"``)."""
    digits = MINOR_UNITS.get(currency, 2)
    return text(Decimal(int(units)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))
