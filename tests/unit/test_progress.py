"""The one progress bar: rate and ETA on a terminal, silent anywhere else."""

from __future__ import annotations

import io

from replays.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_draws_done_total_rate_and_eta_then_ends_the_line() -> None:
    out = Terminal()
    bar = ProgressBar("demo", stream=out, unit="cmd")
    bar(50, 100)
    bar(100, 100)  # the last step is always drawn, however soon after the previous one
    bar.done()
    text = out.getvalue()
    assert text.startswith("\rdemo [") and "100/100 100.0%" in text
    assert "cmd/s" in text and "ETA 0:00" in text and text.endswith("\n")


def test_without_a_total_it_counts_with_a_rate() -> None:
    out = Terminal()
    bar = ProgressBar("import visits", stream=out, unit="lines")
    bar(7)
    assert "import visits 7 " in out.getvalue() and "lines/s" in out.getvalue()
    assert "ETA" not in out.getvalue()


def test_into_a_pipe_or_file_it_stays_silent() -> None:
    out = io.StringIO()  # not a terminal
    bar = ProgressBar("rebuild", stream=out)
    bar(1, 2)
    bar(2, 2)
    bar.done()
    assert out.getvalue() == ""


def test_quiet_silences_it_even_on_a_terminal() -> None:
    bar = ProgressBar.on_terminal("bench set-up", quiet=True)
    assert not bar.enabled


def test_eta_is_remaining_work_at_the_rate_so_far() -> None:
    bar = ProgressBar("x", stream=Terminal())
    assert bar.line(100, 400, elapsed=10.0).endswith("10 ev/s ETA 0:30")
