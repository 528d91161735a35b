"""One IMAP follower / SMTP sender per data folder, however many processes try."""

from __future__ import annotations

import threading

from touchstream import settings as settings_mod
from touchstream.email_wiring import exclusive_runner


def test_a_second_runner_waits_until_the_first_lets_go(sqlite_env: dict[str, str]) -> None:
    conf = settings_mod.load(sqlite_env)
    stop = threading.Event()
    order: list[str] = []
    with exclusive_runner(conf, "smtp", stop) as first:
        assert first
        waiter_stop = threading.Event()

        def second() -> None:
            with exclusive_runner(conf, "smtp", waiter_stop, poll_s=0.02) as got:
                order.append(f"second:{got}")

        t = threading.Thread(target=second)
        t.start()
        t.join(timeout=0.3)
        assert t.is_alive() and order == []  # still waiting for the lock
        order.append("first-done")
    t.join(timeout=5)
    assert order == ["first-done", "second:True"]


def test_a_waiting_runner_gives_up_when_stopped(sqlite_env: dict[str, str]) -> None:
    conf = settings_mod.load(sqlite_env)
    stop = threading.Event()
    with exclusive_runner(conf, "imap", threading.Event()):
        stop.set()
        with exclusive_runner(conf, "imap", stop, poll_s=0.01) as got:
            assert got is False
