"""The demo's sales: deterministic, every sales command present, dated after the customer's
registration and before ``until``, order totals matching their lines."""

from __future__ import annotations

from collections import Counter

from commands import messages as m
from commands import sales as s
from touchstream import demo
from touchstream.demo_sales import sales_plan
from touchstream.demo_value import retention_plan


def test_the_sales_plan_is_deterministic_complete_and_in_the_past() -> None:
    plan = demo.demo_plan(60, 3)
    again = sales_plan(plan.commands, 1, demo.DEFAULT_UNTIL)
    repeat = {c.source_key for c in retention_plan(plan.commands, 1, demo.DEFAULT_UNTIL)}
    everything = [c for c in plan.commands if isinstance(c, s.SalesCommand)
                  and c.source_key not in repeat]  # repeat buyers: tests/unit/test_demo_value
    # Orders and opportunities campaigns brought come from the marketing plan.
    ours = [c for c in everything if not (c.source_key or "").startswith("demo-converts-")]
    assert [c.model_dump() for c in ours] == [c.model_dump() for c in again]
    assert 0 < len(everything) - len(ours) < len(ours) // 10
    kinds = Counter(c.kind for c in ours)
    assert {model.model_fields["kind"].default for model in s.HANDLERS} <= set(kinds), kinds
    registered = {c.customer_id: c.occurred_at for c in plan.commands
                  if isinstance(c, m.RegisterCustomer)}
    for c in everything:
        assert c.occurred_at is not None
        assert registered[c.customer_id] <= c.occurred_at < demo.DEFAULT_UNTIL  # type: ignore[operator]
    assert len({c.source_key for c in everything}) == len(everything)
