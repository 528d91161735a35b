"""A call's summary, derived from the steps the PBX or provider reported and from
the call as a whole when it was logged (a CDR row, ``record call``/``log-call``).

Steps arrive out of order and more than once; the summary never depends on
arrival order. The call's state is the step with the highest sequence number
(ties broken by how far along a call the step is), so a late "ringing" never
moves a completed call back.

A logged call is a report of the whole, finished call: it makes the state
terminal (its outcome's step unless the steps ended the call themselves), and
its own figures (outcome, talk time, wait, agent, queue, numbers) win over what
the steps imply; the steps fill in what the log left out. Several logs of one
call combine in the order they were made, later non-empty values winning.
Pure functions: no clock, no I/O — used by read models, the CLI and tests alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

# How far along a call each step is; terminal steps end the call.
STEP_RANK = {
    "offered": 0,
    "queued": 1,
    "ringing": 2,
    "answered": 3,
    "transferred": 4,
    "voicemail": 5,
    "ended": 6,
    "missed": 6,
    "abandoned": 6,
    "busy": 6,
    "failed": 6,
}
TERMINAL_STEPS = frozenset({"ended", "missed", "abandoned", "busy", "failed", "voicemail"})
# Steps that describe the call without changing its state.
SIDE_STEPS = frozenset({"recording-available"})
WAITING_STEPS = frozenset({"offered", "queued", "ringing"})


@dataclass(frozen=True)
class CallStep:
    """One reported step of a call."""

    call_id: str
    step: str
    sequence: int
    occurred_at: datetime
    from_number: str | None = None
    to_number: str | None = None
    queue: str | None = None
    agent: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Any) -> CallStep:
        """From a ``Customer.CallStepRecorded`` event."""
        return cls(
            call_id=event.call_id, step=event.step, sequence=event.sequence,
            occurred_at=event.occurred_at, from_number=event.from_number,
            to_number=event.to_number, queue=event.queue, agent=event.agent,
            details=dict(event.details),
        )


#: The step a finished call's logged outcome corresponds to.
OUTCOME_STEP = {
    "answered": "ended", "missed": "missed", "abandoned": "abandoned",
    "voicemail": "voicemail", "busy": "busy", "failed": "failed",
}


@dataclass(frozen=True)
class LoggedCall:
    """A call reported as a whole (``Customer.CallLogged``)."""

    call_id: str
    outcome: str
    occurred_at: datetime
    from_number: str | None = None
    to_number: str | None = None
    queue: str | None = None
    agent: str | None = None
    duration_s: int | None = None
    wait_s: int | None = None
    recording_ref: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> LoggedCall:
        """From a ``Customer.CallLogged`` event."""
        return cls(
            call_id=event.call_id, outcome=event.outcome, occurred_at=event.occurred_at,
            from_number=event.from_number, to_number=event.to_number, queue=event.queue,
            agent=event.agent, duration_s=event.duration_s, wait_s=event.wait_s,
            recording_ref=event.recording_ref,
        )


@dataclass(frozen=True)
class CallSummary:
    call_id: str
    state: str
    outcome: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    wait_s: int | None
    agent: str | None
    queue: str | None
    from_number: str | None
    to_number: str | None
    transfers: int
    recordings: tuple[str, ...]
    steps: int
    logged: bool = False


def _order(step: CallStep) -> tuple[int, int, datetime]:
    return (step.sequence, STEP_RANK.get(step.step, -1), step.occurred_at)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def summarise_call(
    steps: Iterable[CallStep], logged: Iterable[LoggedCall] = ()
) -> CallSummary:
    """The summary of one call from its steps and logs, whatever order they came in."""
    ordered = sorted(steps, key=_order)
    logs = sorted(logged, key=lambda c: (c.occurred_at, repr(c)))
    call_ids = {s.call_id for s in ordered} | {c.call_id for c in logs}
    if not call_ids:
        raise ValueError("a call summary needs at least one step or logged call")
    if len(call_ids) != 1:
        raise ValueError(f"steps of several calls given: {sorted(call_ids)}")
    if not ordered:
        return _apply_logs(_from_log(logs[0]), logs)
    summary = _from_steps(ordered)
    return _apply_logs(summary, logs) if logs else summary


def _from_log(log: LoggedCall) -> CallSummary:
    return CallSummary(
        call_id=log.call_id, state=OUTCOME_STEP.get(log.outcome, "ended"), outcome=log.outcome,
        started_at=log.occurred_at, answered_at=None, ended_at=None, duration_s=None,
        wait_s=None, agent=None, queue=None, from_number=None, to_number=None, transfers=0,
        recordings=(), steps=0,
    )


def _apply_logs(summary: CallSummary, logs: list[LoggedCall]) -> CallSummary:
    """The steps' summary completed and overridden by the logged call(s)."""
    s = summary
    outcome, agent, queue = s.outcome, s.agent, s.queue
    from_number, to_number, duration, wait = s.from_number, s.to_number, s.duration_s, s.wait_s
    recordings = list(s.recordings)
    for log in logs:
        outcome = log.outcome
        agent, queue = log.agent or agent, log.queue or queue
        from_number, to_number = log.from_number or from_number, log.to_number or to_number
        duration = log.duration_s if log.duration_s is not None else duration
        wait = log.wait_s if log.wait_s is not None else wait
        if log.recording_ref and log.recording_ref not in recordings:
            recordings.append(log.recording_ref)
    started_at = min([s.started_at, *(log.occurred_at for log in logs)])
    answered_at = s.answered_at
    if answered_at is None and outcome == "answered" and wait is not None:
        answered_at = started_at + timedelta(seconds=wait)
    ended_at = s.ended_at
    if ended_at is None and answered_at is not None and duration is not None:
        ended_at = answered_at + timedelta(seconds=duration)
    state = s.state if s.state in TERMINAL_STEPS else OUTCOME_STEP.get(outcome or "", "ended")
    return replace(
        s, state=state, outcome=outcome, started_at=started_at, answered_at=answered_at,
        ended_at=ended_at, duration_s=duration, wait_s=wait, agent=agent, queue=queue,
        from_number=from_number, to_number=to_number, recordings=tuple(recordings),
        logged=True,
    )


def _from_steps(ordered: list[CallStep]) -> CallSummary:
    state_steps = [s for s in ordered if s.step not in SIDE_STEPS]
    state = state_steps[-1].step if state_steps else "offered"
    by_time = sorted(ordered, key=lambda s: s.occurred_at)
    started_at = by_time[0].occurred_at
    answered = [s for s in ordered if s.step == "answered"]
    answered_at = min((s.occurred_at for s in answered), default=None)
    terminal = [s for s in state_steps if s.step in TERMINAL_STEPS]
    ended_at = max((s.occurred_at for s in terminal), default=None)
    outcome = _outcome(state, bool(answered), any(s.step == "queued" for s in ordered))
    return CallSummary(
        call_id=ordered[0].call_id,
        state=state,
        outcome=outcome,
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_s=_duration(terminal, answered_at, ended_at),
        wait_s=_wait(started_at, answered_at, ended_at),
        agent=_latest(ordered, "agent"),
        queue=_latest(ordered, "queue"),
        from_number=_first(by_time, "from_number"),
        to_number=_first(by_time, "to_number"),
        transfers=len({s.sequence for s in ordered if s.step == "transferred"}),
        recordings=_recordings(ordered),
        steps=len(ordered),
    )


def _outcome(state: str, answered: bool, queued: bool) -> str | None:
    """Outcome of a finished call; None while it is still going on."""
    if state not in TERMINAL_STEPS:
        return None
    if state == "voicemail":
        return "voicemail"
    if state == "ended":
        if answered:
            return "answered"
        return "abandoned" if queued else "missed"
    return state


def _duration(
    terminal: list[CallStep], answered_at: datetime | None, ended_at: datetime | None
) -> int | None:
    """Talk time: the provider's own figure when it gave one, else answer→end."""
    for step in reversed(terminal):
        reported = _int(step.details.get("duration_s"))
        if reported is not None:
            return reported
    if answered_at is not None and ended_at is not None:
        return max(0, int((ended_at - answered_at).total_seconds()))
    return None


def _wait(
    started_at: datetime, answered_at: datetime | None, ended_at: datetime | None
) -> int | None:
    """Time before an agent answered (or before the caller gave up)."""
    until = answered_at or ended_at
    if until is None:
        return None
    return max(0, int((until - started_at).total_seconds()))


def _recordings(ordered: list[CallStep]) -> tuple[str, ...]:
    refs = (s.details.get("recording_url") or s.details.get("recording_sid")
            for s in ordered if s.step == "recording-available")
    return tuple(dict.fromkeys(r for r in refs if r))


def _latest(ordered: list[CallStep], attr: str) -> str | None:
    for step in reversed(ordered):
        value = getattr(step, attr)
        if value:
            return str(value)
    return None


def _first(ordered: list[CallStep], attr: str) -> str | None:
    for step in ordered:
        value = getattr(step, attr)
        if value:
            return str(value)
    return None


def summarise_calls(
    steps: Iterable[CallStep], logged: Iterable[LoggedCall] = ()
) -> dict[str, CallSummary]:
    """Summaries of every call among ``steps`` and ``logged`` calls, by call id."""
    grouped: dict[str, tuple[list[CallStep], list[LoggedCall]]] = {}
    for step in steps:
        grouped.setdefault(step.call_id, ([], []))[0].append(step)
    for log in logged:
        grouped.setdefault(log.call_id, ([], []))[1].append(log)
    return {call_id: summarise_call(s, c) for call_id, (s, c) in grouped.items()}
