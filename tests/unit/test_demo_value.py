"""The demo's repeat buyers: deterministic, dated inside each customer's life, and making the
cohorts non-trivial — customers who churn and customers who come back."""

from __future__ import annotations

from commands import messages as m
from commands import sales as s
from domain import value as rules
from touchstream import demo
from touchstream.demo_value import retention_plan


def test_the_demo_has_repeat_buyers_who_churn_and_some_who_return() -> None:
    plan = demo.demo_plan(60, 3)
    ours = retention_plan(plan.commands, 1, demo.DEFAULT_UNTIL)
    keys = {c.source_key for c in ours}
    assert [c.model_dump() for c in plan.commands if c.source_key in keys] == [
        c.model_dump() for c in ours]
    assert len(keys) == len(ours) and ours
    registered = {c.customer_id: c.occurred_at for c in plan.commands
                  if isinstance(c, m.RegisterCustomer)}
    for c in ours:
        assert registered[c.customer_id] <= c.occurred_at < demo.DEFAULT_UNTIL  # type: ignore[index,operator]

    placed = [rules.Activity(str(c.customer_id), c.occurred_at, rules.PURCHASE)  # type: ignore[arg-type]
              for c in plan.commands if isinstance(c, s.PlaceOrder)]
    found = rules.cohorts(placed, demo.DEFAULT_UNTIL.date(), 6)
    assert len({c.cohort for c in found.cells}) >= 12  # a cohort in most months
    assert sum(c.churned for c in found.cells) >= 10
    assert sum(c.returned for c in found.cells) >= 5
