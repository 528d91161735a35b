"""A call's summary derived from its steps, whatever order they arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calls import CallStep, summarise_call, summarise_calls

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def step(name: str, seq: int, at_s: int, **kw: object) -> CallStep:
    return CallStep(call_id="CA1", step=name, sequence=seq,
                    occurred_at=T0 + timedelta(seconds=at_s), **kw)  # type: ignore[arg-type]


ANSWERED_CALL = [
    step("offered", 0, 0, from_number="+442079460018", to_number="+442079460000"),
    step("queued", 1, 2, queue="support"),
    step("ringing", 2, 20, agent="mia"),
    step("answered", 3, 41, agent="mia"),
    step("recording-available", 4, 300, details={"recording_url": "https://r/1"}),
    step("ended", 5, 353, details={"duration_s": "312"}),
]


def test_answered_call_summary_has_wait_duration_agent_and_recording() -> None:
    s = summarise_call(ANSWERED_CALL)
    assert (s.state, s.outcome) == ("ended", "answered")
    assert s.wait_s == 41 and s.duration_s == 312
    assert s.agent == "mia" and s.queue == "support"
    assert s.from_number == "+442079460018" and s.to_number == "+442079460000"
    assert s.recordings == ("https://r/1",)
    assert s.started_at == T0 and s.ended_at == T0 + timedelta(seconds=353)


def test_duration_falls_back_to_answer_to_end_when_the_provider_gave_none() -> None:
    steps = [step("ringing", 1, 0), step("answered", 2, 10), step("ended", 3, 70)]
    assert summarise_call(steps).duration_s == 60


def test_queued_call_ended_without_answer_is_abandoned_and_unqueued_is_missed() -> None:
    abandoned = summarise_call([step("queued", 1, 0), step("ended", 2, 30)])
    assert abandoned.outcome == "abandoned" and abandoned.wait_s == 30
    missed = summarise_call([step("ringing", 1, 0), step("ended", 2, 25)])
    assert missed.outcome == "missed" and missed.duration_s is None


def test_call_in_progress_has_no_outcome_yet() -> None:
    s = summarise_call([step("ringing", 1, 0), step("answered", 2, 5)])
    assert s.state == "answered" and s.outcome is None and s.ended_at is None


def test_late_ringing_never_moves_a_completed_call_back() -> None:
    s = summarise_call([step("answered", 2, 5), step("ended", 3, 60), step("ringing", 1, 1)])
    assert s.state == "ended"


def test_recording_callback_does_not_change_the_state() -> None:
    s = summarise_call([step("answered", 2, 5),
                        step("recording-available", 0, 90, details={"recording_sid": "RE1"})])
    assert s.state == "answered" and s.recordings == ("RE1",)


def test_steps_of_several_calls_are_refused_but_summarise_calls_groups_them() -> None:
    other = CallStep(call_id="CA2", step="ended", sequence=1, occurred_at=T0)
    with pytest.raises(ValueError, match="several calls"):
        summarise_call([ANSWERED_CALL[0], other])
    assert set(summarise_calls([*ANSWERED_CALL, other])) == {"CA1", "CA2"}


@given(st.permutations(ANSWERED_CALL), st.lists(st.sampled_from(ANSWERED_CALL), max_size=6))
def test_summary_is_the_same_for_every_arrival_order_and_duplicates(
    order: list[CallStep], dupes: list[CallStep]
) -> None:
    expected = summarise_call(ANSWERED_CALL)
    got = summarise_call([*order, *dupes])
    assert got.state == expected.state and got.outcome == expected.outcome
    assert (got.wait_s, got.duration_s, got.agent) == (
        expected.wait_s, expected.duration_s, expected.agent)
