"""RFM against a hand-computed example (as of 2026-12-31, a 365-day period)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.rfm import Purchase, quintiles, rfm


def _p(customer: str, day: str, amount: str) -> Purchase:
    return Purchase(customer, date.fromisoformat(day), Decimal(amount))


PURCHASES = [
    _p("a", "2026-12-30", "100"), _p("a", "2026-06-01", "50"),
    _p("b", "2026-12-01", "500"),
    _p("c", "2025-06-01", "1000"),  # before the period: recent-ness only
    _p("d", "2026-11-01", "20"), _p("d", "2026-10-01", "20"), _p("d", "2026-09-01", "20"),
    _p("e", "2026-12-30", "10"),
    _p("f", "2027-01-05", "999"),  # after the as-of day: not yet a customer
]


def test_rfm_matches_the_hand_computed_example() -> None:
    # recency (days): a 1, b 30, c 578, d 60, e 1 -> worst first c, d, b, a=e -> 1,2,3,4,4
    # frequency: c 0, b 1, e 1, a 2, d 3 -> 1, 2, 2, 4, 5
    # monetary: c 0, e 10, d 60, a 150, b 500 -> 1, 2, 3, 4, 5
    scores = {s.customer_id: s for s in rfm(PURCHASES, date(2026, 12, 31), 365)}
    assert sorted(scores) == ["a", "b", "c", "d", "e"]
    assert {c: (s.recency_days, s.frequency, s.monetary) for c, s in scores.items()} == {
        "a": (1, 2, Decimal(150)), "b": (30, 1, Decimal(500)), "c": (578, 0, Decimal(0)),
        "d": (60, 3, Decimal(60)), "e": (1, 1, Decimal(10))}
    assert {c: s.code for c, s in scores.items()} == {
        "a": "444", "b": "325", "c": "111", "d": "253", "e": "422"}


def test_an_earlier_as_of_day_reads_the_past() -> None:
    scores = {s.customer_id: s for s in rfm(PURCHASES, date(2026, 6, 1), 30)}
    assert sorted(scores) == ["a", "c"]  # b, d, e had not bought yet
    assert (scores["a"].recency_days, scores["a"].frequency) == (0, 1)
    assert (scores["c"].frequency, scores["c"].r, scores["a"].r) == (0, 1, 3)  # 1 + ⌊5×1÷2⌋


def test_the_period_includes_the_as_of_day_and_its_first_day() -> None:
    (s,) = rfm([_p("a", "2026-12-02", "5"), _p("a", "2026-12-31", "5")], date(2026, 12, 31), 30)
    assert (s.frequency, s.monetary) == (2, Decimal(10))
    (s,) = rfm([_p("a", "2026-12-01", "5")], date(2026, 12, 31), 30)
    assert s.frequency == 0


def test_equal_values_share_a_score_and_scores_span_one_to_five() -> None:
    assert set(quintiles({"x": 1, "y": 1, "z": 1}).values()) == {1}
    spread = quintiles({str(i): i for i in range(10)})
    assert [spread[str(i)] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    with pytest.raises(ValueError):
        rfm([], date(2026, 1, 1), 0)
