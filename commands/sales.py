"""Sales commands: opportunities, quotes and orders on a customer's stream.

Each handler reads load → decide → save through ``Hub.record_on`` (idempotent
by source key on every store); the rules are ``domain.sales``'s. An ERP order
number is the natural source key of ``PlaceOrder`` (``order:<number>``), so an
order delivered twice is placed once; the later steps of an order are keyed by
order number and step (``order-paid:<number>:<payment id>``…) when the source
gives no key. Amounts are decimal strings (a JSON number is refused: a float
cannot carry cents exactly).

Commands may be sent by a partner key (``Command.for_partner``): the write
model then refuses, as "no customer", any customer not assigned to that
partner, before anything is read or recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from commands import messages as m
from commands.naming import NAMESPACE
from commands.ports import Recorded
from commands.provenance import source_key
from domain import sales
from domain.customer import Customer

Amount = Annotated[str, Field(pattern=r"^\d{1,15}(\.\d{1,6})?$", examples=["1250.00"],
                              description="A decimal string (never a JSON number).")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"],
                                description="ISO 4217 code.")]
Id = Annotated[str, Field(min_length=1, max_length=200)]


def pipeline_of(hub: Any) -> sales.Pipeline:
    """The pipeline the hub was configured with (the default one otherwise)."""
    found = hub.context.policies.get(sales.AREA)
    return found if isinstance(found, sales.Pipeline) else sales.DEFAULT_PIPELINE


class SalesCommand(m.Command):
    customer_id: UUID = Field(description="The customer's id.")


class OpenOpportunity(SalesCommand):
    """Open an opportunity (in the pipeline's first stage unless ``stage`` names another)."""

    kind: Literal["open-opportunity"] = "open-opportunity"
    opportunity_id: UUID | None = Field(None, description=(
        "Default: derived from the source key (or Idempotency-Key), so a retry opens one."))
    title: m.Short
    amount: Amount
    currency: Currency
    expected_close: date
    owner: m.Short
    stage: m.Short | None = None
    source_campaign_id: Id | None = None
    account_id: UUID | None = None

    def default_source_key(self) -> str | None:
        return f"open-opportunity:{self.opportunity_id}" if self.opportunity_id else None

    def the_opportunity_id(self) -> str:
        """The given id, else one derived from the source key (the same on every retry)."""
        if self.opportunity_id is not None:
            return str(self.opportunity_id)
        return str(uuid5(NAMESPACE, f"opportunity|{source_key(self)}"))


class OpportunityCommand(SalesCommand):
    opportunity_id: UUID


class MoveOpportunityStage(OpportunityCommand):
    """Move an open opportunity to another open stage."""

    kind: Literal["move-opportunity-stage"] = "move-opportunity-stage"
    to_stage: m.Short


class ChangeOpportunity(OpportunityCommand):
    """Change an open opportunity's amount (and currency), expected close date or owner."""

    kind: Literal["change-opportunity"] = "change-opportunity"
    amount: Amount | None = None
    currency: Currency | None = None
    expected_close: date | None = None
    owner: m.Short | None = None


class WinOpportunity(OpportunityCommand):
    """Close an opportunity as won, with the order it became."""

    kind: Literal["win-opportunity"] = "win-opportunity"
    order_reference: Id

    def default_source_key(self) -> str:
        return f"win-opportunity:{self.opportunity_id}:{self.order_reference}"


class LoseOpportunity(OpportunityCommand):
    """Close an opportunity as lost, with a reason from the pipeline's list."""

    kind: Literal["lose-opportunity"] = "lose-opportunity"
    reason: m.Short


class ReopenOpportunity(OpportunityCommand):
    """Reopen a won or lost opportunity (in the first stage unless ``to_stage`` names one)."""

    kind: Literal["reopen-opportunity"] = "reopen-opportunity"
    to_stage: m.Short | None = None


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    product_code: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Amount
    unit_price: Amount
    discount: Amount = Field("0", description="Percentage off the line, 0–100.")


Lines = Annotated[list[LineIn], Field(min_length=1, max_length=500)]


class SendQuote(SalesCommand):
    """Record a quote sent to the customer (its total is computed from the lines, or
    checked against them when given)."""

    kind: Literal["send-quote"] = "send-quote"
    quote_id: Id
    lines: Lines
    currency: Currency
    total: Amount | None = None
    opportunity_id: UUID | None = None
    valid_until: date | None = None

    def default_source_key(self) -> str:
        return f"send-quote:{self.quote_id}"


class PlaceOrder(SalesCommand):
    """Record an order from the ERP: its order number is the source key; the total must
    equal the sum of the lines."""

    kind: Literal["place-order"] = "place-order"
    order_number: Id
    lines: Lines
    total: Amount
    currency: Currency
    opportunity_id: UUID | None = None

    def default_source_key(self) -> str:
        return f"order:{self.order_number}"


class OrderCommand(SalesCommand):
    order_number: Id


class PayOrder(OrderCommand):
    """Record a payment (the whole amount due unless ``amount`` says less)."""

    kind: Literal["pay-order"] = "pay-order"
    amount: Amount | None = None
    payment_id: Id | None = Field(None, description="The payment's id at the source.")

    def default_source_key(self) -> str | None:
        if self.payment_id:
            return f"order-paid:{self.order_number}:{self.payment_id}"
        return None if self.amount else f"order-paid:{self.order_number}:full"


class ShipOrder(OrderCommand):
    """Record that an order was shipped."""

    kind: Literal["ship-order"] = "ship-order"

    def default_source_key(self) -> str:
        return f"order-shipped:{self.order_number}"


class ReturnOrder(OrderCommand):
    """Record goods returned and/or money refunded (``amount`` refunded)."""

    kind: Literal["return-order"] = "return-order"
    amount: Amount
    return_id: Id | None = Field(None, description="The return's id at the source.")
    reason: m.Short | None = None

    def default_source_key(self) -> str | None:
        return f"order-returned:{self.order_number}:{self.return_id}" if self.return_id else None


class CancelOrder(OrderCommand):
    """Cancel an order not yet shipped."""

    kind: Literal["cancel-order"] = "cancel-order"
    reason: m.Short | None = None

    def default_source_key(self) -> str:
        return f"order-cancelled:{self.order_number}"


Decide = Callable[[Customer, Any], None]


def _on(hub: Any, cmd: SalesCommand, decide: Callable[[Customer, Any], None]) -> Recorded:
    return hub.record_on(cmd, cmd.customer_id,  # type: ignore[no-any-return]
                         lambda c, p: decide(c, next(iter(p))))


def open_opportunity(hub: Any, cmd: OpenOpportunity) -> Recorded:
    # Without an id, one derived from the source key: a retry under the same key (or
    # Idempotency-Key) opens the same opportunity once.
    opportunity_id = cmd.the_opportunity_id()
    return _on(hub, cmd, lambda c, p: sales.open_opportunity(
        c, p, pipeline_of(hub), opportunity_id=opportunity_id, title=cmd.title,
        amount=cmd.amount, currency=cmd.currency, expected_close=cmd.expected_close,
        owner=cmd.owner, stage=cmd.stage, source_campaign_id=cmd.source_campaign_id,
        account_id=str(cmd.account_id) if cmd.account_id else None))


def move_opportunity_stage(hub: Any, cmd: MoveOpportunityStage) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.move_stage(
        c, p, pipeline_of(hub), opportunity_id=str(cmd.opportunity_id), to_stage=cmd.to_stage))


def change_opportunity(hub: Any, cmd: ChangeOpportunity) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.change_opportunity(
        c, p, opportunity_id=str(cmd.opportunity_id), amount=cmd.amount, currency=cmd.currency,
        expected_close=cmd.expected_close, owner=cmd.owner))


def win_opportunity(hub: Any, cmd: WinOpportunity) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.win(
        c, p, pipeline_of(hub), opportunity_id=str(cmd.opportunity_id),
        order_reference=cmd.order_reference))


def lose_opportunity(hub: Any, cmd: LoseOpportunity) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.lose(
        c, p, pipeline_of(hub), opportunity_id=str(cmd.opportunity_id), reason=cmd.reason))


def reopen_opportunity(hub: Any, cmd: ReopenOpportunity) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.reopen(
        c, p, pipeline_of(hub), opportunity_id=str(cmd.opportunity_id), to_stage=cmd.to_stage))


def _lines(lines: list[LineIn]) -> list[dict[str, str]]:
    return [ln.model_dump() for ln in lines]


def send_quote(hub: Any, cmd: SendQuote) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.send_quote(
        c, p, quote_id=cmd.quote_id, lines=_lines(cmd.lines), currency=cmd.currency,
        total=cmd.total, valid_until=cmd.valid_until,
        opportunity_id=str(cmd.opportunity_id) if cmd.opportunity_id else None))


def place_order(hub: Any, cmd: PlaceOrder) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.place_order(
        c, p, order_number=cmd.order_number, lines=_lines(cmd.lines), total=cmd.total,
        currency=cmd.currency,
        opportunity_id=str(cmd.opportunity_id) if cmd.opportunity_id else None))


def pay_order(hub: Any, cmd: PayOrder) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.pay_order(
        c, p, order_number=cmd.order_number, amount=cmd.amount))


def ship_order(hub: Any, cmd: ShipOrder) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.ship_order(c, p, order_number=cmd.order_number))


def return_order(hub: Any, cmd: ReturnOrder) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.return_order(
        c, p, order_number=cmd.order_number, amount=cmd.amount, reason=cmd.reason))


def cancel_order(hub: Any, cmd: CancelOrder) -> Recorded:
    return _on(hub, cmd, lambda c, p: sales.cancel_order(
        c, p, order_number=cmd.order_number, reason=cmd.reason))


HANDLERS: dict[type[m.Command], Callable[[Any, Any], Recorded]] = {
    OpenOpportunity: open_opportunity,
    MoveOpportunityStage: move_opportunity_stage,
    ChangeOpportunity: change_opportunity,
    WinOpportunity: win_opportunity,
    LoseOpportunity: lose_opportunity,
    ReopenOpportunity: reopen_opportunity,
    SendQuote: send_quote,
    PlaceOrder: place_order,
    PayOrder: pay_order,
    ShipOrder: ship_order,
    ReturnOrder: return_order,
    CancelOrder: cancel_order,
}
