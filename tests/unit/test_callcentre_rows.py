"""The call-centre read model's shortcut for a call known only from one logged record
gives the row ``domain.calls.summarise_call`` gives (the general path)."""

from __future__ import annotations

import pytest

from projections.callcentre.projection import _call_row, _logged_only_row, _summarised_row

AT = 1_700_000_123_456_789  # microseconds: not on an hour boundary


@pytest.mark.parametrize("outcome", ["answered", "missed", "abandoned", "voicemail", "busy",
                                     "failed", "unheard-of"])
@pytest.mark.parametrize(("queue", "agent", "duration", "wait"), [
    ("sales", "mia", 95, 12), (None, None, None, None), ("", "", 0, 0), ("support", None, 7, None),
])
@pytest.mark.parametrize("direction", ["inbound", "outbound", "internal"])
def test_logged_only_row_equals_the_summary(outcome: str, queue: str | None, agent: str | None,
                                            duration: int | None, wait: int | None,
                                            direction: str) -> None:
    part = ("log", direction, None, None, outcome, AT, queue, agent, duration, wait)
    assert _logged_only_row("c-1", part) == _summarised_row("c-1", [part])
    assert _call_row("c-1", [part]) == _summarised_row("c-1", [part])
