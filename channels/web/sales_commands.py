"""Sales command routes: ``POST /commands/<name>`` for opportunities, quotes and orders.

Merged into ``channels.web.command_routes``'s tables. ``partner`` keys may open
and update opportunities (never orders or quotes: those come from staff and the
ERP) and only for customers assigned to their partner: the route passes the
command on ``for_partner`` and the write model answers 404 for any other
customer, exactly like an unknown one, before anything is read or recorded.
"""

from collections.abc import Mapping
from typing import Any

from commands import messages as m
from commands import sales as s

_CID = "0b7c2c52-6f1e-4c38-9a55-1f7f0a3c1e11"
_OPP = "5d1e8c2a-7b3f-4e19-9c60-2a8f4b1d7e33"
_LINES = [{"product_code": "BOILER-X2", "quantity": "1", "unit_price": "2400.00",
           "discount": "10"},
          {"product_code": "SERVICE-1Y", "quantity": "2", "unit_price": "150.00"}]

_OPPORTUNITY = ("sales", "partner")
_ORDERS = ("sales", "adapter")

#: route name → roles admitted (admin is always admitted by ``authorize``)
ROUTE_ROLES: Mapping[str, tuple[str, ...]] = {
    "open-opportunity": _OPPORTUNITY,
    "move-opportunity-stage": _OPPORTUNITY,
    "change-opportunity": _OPPORTUNITY,
    "win-opportunity": _OPPORTUNITY,
    "lose-opportunity": _OPPORTUNITY,
    "reopen-opportunity": _OPPORTUNITY,
    "send-quote": ("sales",),
    "place-order": _ORDERS,
    "pay-order": _ORDERS,
    "ship-order": _ORDERS,
    "return-order": _ORDERS,
    "cancel-order": _ORDERS,
}

#: route name → (command model, summary, example body)
COMMANDS: Mapping[str, tuple[type[m.Command], str, dict[str, Any]]] = {
    "open-opportunity": (s.OpenOpportunity, "Open a sales opportunity", {
        "customer_id": _CID, "opportunity_id": _OPP, "title": "Boiler replacement, 3 sites",
        "amount": "18500.00", "currency": "EUR", "expected_close": "2027-02-28",
        "owner": "mia", "source_campaign_id": "spring-2027"}),
    "move-opportunity-stage": (s.MoveOpportunityStage, "Move an opportunity to another stage", {
        "customer_id": _CID, "opportunity_id": _OPP, "to_stage": "proposal"}),
    "change-opportunity": (s.ChangeOpportunity, "Change amount, close date or owner", {
        "customer_id": _CID, "opportunity_id": _OPP, "amount": "21000.00",
        "expected_close": "2027-03-31"}),
    "win-opportunity": (s.WinOpportunity, "Close an opportunity as won", {
        "customer_id": _CID, "opportunity_id": _OPP, "order_reference": "SO-2027-00042"}),
    "lose-opportunity": (s.LoseOpportunity, "Close an opportunity as lost", {
        "customer_id": _CID, "opportunity_id": _OPP, "reason": "competitor"}),
    "reopen-opportunity": (s.ReopenOpportunity, "Reopen a won or lost opportunity", {
        "customer_id": _CID, "opportunity_id": _OPP, "to_stage": "negotiation"}),
    "send-quote": (s.SendQuote, "Record a quote sent to the customer", {
        "customer_id": _CID, "quote_id": "Q-2027-0017", "opportunity_id": _OPP,
        "lines": _LINES, "currency": "EUR", "total": "2460.00", "valid_until": "2027-01-31"}),
    "place-order": (s.PlaceOrder, "Record an order from the ERP (order number = source key)", {
        "customer_id": _CID, "order_number": "SO-2027-00042", "lines": _LINES,
        "total": "2460.00", "currency": "EUR", "opportunity_id": _OPP,
        "occurred_at": "2027-02-20T10:15:00+00:00"}),
    "pay-order": (s.PayOrder, "Record a payment of an order", {
        "customer_id": _CID, "order_number": "SO-2027-00042", "amount": "2460.00",
        "payment_id": "PAY-88121"}),
    "ship-order": (s.ShipOrder, "Record an order as shipped", {
        "customer_id": _CID, "order_number": "SO-2027-00042"}),
    "return-order": (s.ReturnOrder, "Record a return or refund", {
        "customer_id": _CID, "order_number": "SO-2027-00042", "amount": "300.00",
        "return_id": "RMA-301", "reason": "service plan not wanted"}),
    "cancel-order": (s.CancelOrder, "Cancel an order not yet shipped", {
        "customer_id": _CID, "order_number": "SO-2027-00042", "reason": "duplicate order"}),
}
