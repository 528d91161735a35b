"""A call's summary derived from its steps and its logged record, whatever order they arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calls import CallStep, LoggedCall, summarise_call, summarise_calls

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


LOGGED = LoggedCall(call_id="CA1", outcome="answered", occurred_at=T0, from_number="+442079460018",
                    queue="support", agent="mia", duration_s=312, wait_s=41,
                    recording_ref="rec-1")


def test_a_logged_call_alone_is_a_finished_call_with_its_figures() -> None:
    s = summarise_call([], [LOGGED])
    assert (s.state, s.outcome, s.agent, s.duration_s, s.wait_s) == (
        "ended", "answered", "mia", 312, 41)
    assert s.started_at == T0 and s.answered_at == T0 + timedelta(seconds=41)
    assert s.ended_at == T0 + timedelta(seconds=353)
    assert s.logged and s.steps == 0 and s.recordings == ("rec-1",)


def test_a_logged_call_with_one_later_step_is_not_queued_and_keeps_agent_and_duration() -> None:
    # The defect: one "queued" step after a logged call showed the call as queued, no agent.
    s = summarise_call([step("queued", 2, 0)], [LOGGED])
    assert (s.state, s.outcome, s.agent, s.duration_s) == ("ended", "answered", "mia", 312)
    assert s.queue == "support" and s.steps == 1 and s.logged


def test_steps_fill_in_what_the_log_left_out_and_the_log_wins_where_it_speaks() -> None:
    sparse = LoggedCall(call_id="CA1", outcome="answered", occurred_at=T0 + timedelta(seconds=1),
                        duration_s=300)
    s = summarise_call(ANSWERED_CALL, [sparse])
    assert s.duration_s == 300  # the log's own figure
    assert (s.agent, s.wait_s, s.from_number) == ("mia", 41, "+442079460018")  # from the steps
    assert s.started_at == T0 and s.recordings == ("https://r/1",)


def test_a_missed_logged_call_is_missed_even_if_steps_stop_at_ringing() -> None:
    missed = LoggedCall(call_id="CA1", outcome="missed", occurred_at=T0)
    s = summarise_call([step("ringing", 1, 0)], [missed])
    assert (s.state, s.outcome, s.answered_at, s.duration_s) == ("missed", "missed", None, None)


def test_summarise_calls_groups_logs_and_steps_by_call() -> None:
    other = LoggedCall(call_id="CA9", outcome="voicemail", occurred_at=T0)
    got = summarise_calls([step("queued", 1, 0)], [LOGGED, other])
    assert set(got) == {"CA1", "CA9"} and got["CA9"].state == "voicemail"
    with pytest.raises(ValueError, match="at least one"):
        summarise_call([], [])


@given(st.permutations([*ANSWERED_CALL[:3], step("queued", 7, 400)]),
       st.lists(st.sampled_from([LOGGED]), min_size=1, max_size=3))
def test_logged_and_stepped_summary_is_the_same_for_every_order_and_duplicates(
    order: list[CallStep], logs: list[LoggedCall]
) -> None:
    expected = summarise_call([*ANSWERED_CALL[:3], step("queued", 7, 400)], [LOGGED])
    got = summarise_call(order, logs)
    assert got == expected
    assert got.state in ("ended", "missed", "abandoned", "voicemail", "busy", "failed")
