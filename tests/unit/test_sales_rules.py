"""Sales rules, given/when/then on the customer's events: stage moves, changes, wins and
losses, quotes and order totals (Decimal, never float), payments, shipping, returns."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain import sales
from domain.customer import Customer
from tests.support.readside import Story

OPP = "11111111-1111-4111-8111-111111111111"
LINES = [{"product_code": "A", "quantity": "2", "unit_price": "10.00", "discount": "10"},
         {"product_code": "B", "quantity": "1", "unit_price": "5.55"}]


@pytest.fixture
def story() -> Story:
    return Story()


def _customer(story: Story) -> Customer:
    c = story.register("Ada")
    c.collect_events()
    return c


def _open(story: Story, c: Customer, **extra: Any) -> None:
    fields: dict[str, Any] = {"opportunity_id": OPP, "title": "Boilers", "amount": "1000",
                              "currency": "EUR", "expected_close": date(2027, 1, 31),
                              "owner": "mia", **extra}
    sales.open_opportunity(c, story.prov(), sales.DEFAULT_PIPELINE, **fields)


def _events(c: Customer) -> list[Any]:
    return list(c.collect_events())


def test_an_opportunity_opens_in_the_first_stage_with_its_probability(story: Story) -> None:
    c = _customer(story)
    _open(story, c)
    (opened,) = _events(c)
    assert isinstance(opened, sales.OpportunityOpened)
    assert (opened.stage, opened.probability, opened.amount) == ("qualification", 10, "1000.00")


def test_moves_record_the_target_stage_probability_and_refuse_invalid_moves(
        story: Story) -> None:
    c = _customer(story)
    _open(story, c)
    sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                     to_stage="proposal")
    moved = _events(c)[-1]
    assert (moved.from_stage, moved.to_stage, moved.probability) == (
        "qualification", "proposal", 50)
    with pytest.raises(sales.SalesRuleError, match="in 'proposal' already"):
        sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                         to_stage="proposal")
    with pytest.raises(sales.SalesRuleError, match="use win/lose"):
        sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                         to_stage="won")
    with pytest.raises(sales.SalesRuleError, match="unknown open stage 'demo'"):
        sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                         to_stage="demo")
    with pytest.raises(sales.OpportunityUnknownError):
        sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE,
                         opportunity_id="nope", to_stage="proposal")


def test_a_closed_opportunity_refuses_changes_until_reopened(story: Story) -> None:
    c = _customer(story)
    _open(story, c)
    sales.lose(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP, reason="price")
    with pytest.raises(sales.SalesRuleError, match="is lost: cannot move"):
        sales.move_stage(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                         to_stage="proposal")
    with pytest.raises(sales.SalesRuleError, match="is lost: cannot win"):
        sales.win(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                  order_reference="SO-1")
    sales.reopen(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                 to_stage="negotiation")
    with pytest.raises(sales.SalesRuleError, match="nothing to reopen"):
        sales.reopen(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP)
    sales.win(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
              order_reference="SO-1")
    kinds = [type(e).__name__ for e in _events(c)]
    assert kinds == ["OpportunityOpened", "OpportunityLost", "OpportunityReopened",
                     "OpportunityWon"]
    assert sales.opportunities(c)[OPP]["status"] == "won"


def test_a_loss_reason_must_come_from_the_configured_list(story: Story) -> None:
    c = _customer(story)
    _open(story, c)
    with pytest.raises(sales.SalesRuleError, match="not one of"):
        sales.lose(c, story.prov(), sales.DEFAULT_PIPELINE, opportunity_id=OPP,
                   reason="didn't like the tie")
    custom = sales.Pipeline(stages=(sales.Stage("lead", 5),), loss_reasons=("ghosted",))
    sales.lose(c, story.prov(), custom, opportunity_id=OPP, reason="ghosted")
    assert _events(c)[-1].reason == "ghosted"


def test_a_change_records_only_what_changed_and_nothing_when_nothing_did(
        story: Story) -> None:
    c = _customer(story)
    _open(story, c)
    _events(c)
    sales.change_opportunity(c, story.prov(), opportunity_id=OPP, amount="1000.00",
                             owner="mia")
    assert _events(c) == []
    sales.change_opportunity(c, story.prov(), opportunity_id=OPP, amount="1200.5",
                             expected_close=date(2027, 3, 1))
    (changed,) = _events(c)
    assert changed.changed == ["amount", "expected_close"] and changed.amount == "1200.50"


def test_money_is_decimal_text_never_float(story: Story) -> None:
    assert sales.money("12.5", "EUR") == Decimal("12.50")
    assert sales.money("12", "JPY") == Decimal(12)
    for bad in (12.5, "1e3", "-1", "NaN", "12.345"):
        with pytest.raises(sales.InvalidMoneyError):
            sales.money(bad, "EUR")  # type: ignore[arg-type]
    with pytest.raises(sales.InvalidMoneyError, match="ISO 4217"):
        sales.money("1", "eur")
    assert sales.to_minor("1250.00", "EUR") == 125000
    assert sales.from_minor(125000, "EUR") == "1250.00"
    assert sales.from_minor(7, "KWD") == "0.007"


def test_order_totals_are_checked_against_the_lines(story: Story) -> None:
    c = _customer(story)
    # 2 × 10.00 − 10 % = 18.00; + 5.55 = 23.55
    with pytest.raises(sales.OrderTotalMismatchError, match="sum to 23.55 EUR"):
        sales.place_order(c, story.prov(), order_number="SO-1", lines=LINES, total="23.50",
                          currency="EUR")
    sales.place_order(c, story.prov(), order_number="SO-1", lines=LINES, total="23.55",
                      currency="EUR")
    (placed,) = _events(c)
    assert placed.total == "23.55" and placed.lines[0] == {
        "product_code": "A", "quantity": "2", "unit_price": "10.00", "discount": "10"}
    with pytest.raises(sales.SalesRuleError, match="placed already"):
        sales.place_order(c, story.prov(), order_number="SO-1", lines=LINES, total="23.55",
                          currency="EUR")
    with pytest.raises(sales.InvalidMoneyError, match="discount is a percentage"):
        sales.send_quote(c, story.prov(), quote_id="Q1", currency="EUR", total=None,
                         lines=[{**LINES[0], "discount": "120"}])


def test_a_quote_computes_its_total_from_the_lines(story: Story) -> None:
    c = _customer(story)
    sales.send_quote(c, story.prov(), quote_id="Q1", lines=LINES, currency="EUR", total=None)
    assert _events(c)[-1].total == "23.55"


def test_the_order_lifecycle_refuses_what_cannot_happen(story: Story) -> None:
    c = _customer(story)
    sales.place_order(c, story.prov(), order_number="SO-1", lines=LINES, total="23.55",
                      currency="EUR")
    with pytest.raises(sales.SalesRuleError, match="at most the 23.55 EUR still due"):
        sales.pay_order(c, story.prov(), order_number="SO-1", amount="30.00")
    sales.pay_order(c, story.prov(), order_number="SO-1", amount="20.00")
    sales.pay_order(c, story.prov(), order_number="SO-1")  # the rest: 3.55
    assert _events(c)[-1].amount == "3.55"
    with pytest.raises(sales.SalesRuleError, match="paid in full"):
        sales.pay_order(c, story.prov(), order_number="SO-1")
    sales.ship_order(c, story.prov(), order_number="SO-1")
    with pytest.raises(sales.SalesRuleError, match="shipped already"):
        sales.ship_order(c, story.prov(), order_number="SO-1")
    with pytest.raises(sales.SalesRuleError, match="record a return instead"):
        sales.cancel_order(c, story.prov(), order_number="SO-1")
    sales.return_order(c, story.prov(), order_number="SO-1", amount="5.55")
    with pytest.raises(sales.SalesRuleError, match="at most the 18.00 EUR not yet refunded"):
        sales.return_order(c, story.prov(), order_number="SO-1", amount="18.01")
    with pytest.raises(sales.OrderUnknownError):
        sales.ship_order(c, story.prov(), order_number="SO-2")


def test_a_cancelled_order_takes_nothing_more(story: Story) -> None:
    c = _customer(story)
    sales.place_order(c, story.prov(), order_number="SO-1", lines=LINES, total="23.55",
                      currency="EUR")
    sales.cancel_order(c, story.prov(), order_number="SO-1", reason="duplicate")
    for act in (lambda: sales.pay_order(c, story.prov(), order_number="SO-1"),
                lambda: sales.ship_order(c, story.prov(), order_number="SO-1"),
                lambda: sales.cancel_order(c, story.prov(), order_number="SO-1")):
        with pytest.raises(sales.SalesRuleError, match="was cancelled"):
            act()
