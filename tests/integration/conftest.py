"""The Dovecot server and a fresh mailbox + store per test, shared by the IMAP suites."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.hub import Hub
from tests.conftest import store_env
from tests.support import dovecot as dv
from tests.support.hubs import make_hub


@pytest.fixture(scope="module")  # a server per module: each has 40 test users
def dovecot() -> Iterator[dv.Dovecot]:
    reason = dv.available()
    if reason:
        pytest.skip(reason)
    server = dv.Dovecot()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def mailbox(dovecot: dv.Dovecot, tmp_path: Path) -> dict[str, str]:
    """A fresh Dovecot user and a fresh SQLite store pointed at it."""
    user = dovecot.new_user()
    env = store_env("sqlite", tmp_path / "data")
    env.update({
        "TOUCHSTREAM_IMAP_HOST": "127.0.0.1", "TOUCHSTREAM_IMAP_PORT": str(dovecot.port),
        "TOUCHSTREAM_IMAP_SECURITY": "plain", "TOUCHSTREAM_IMAP_USER": user,
        "TOUCHSTREAM_IMAP_PASSWORD": dv.PASSWORD, "TOUCHSTREAM_IMAP_BATCH": "3",
        "TOUCHSTREAM_IMAP_POLL_SECONDS": "0.5", "TOUCHSTREAM_IMAP_BACKOFF_SECONDS": "0.2",
        "TOUCHSTREAM_IMAP_BACKOFF_MAX_SECONDS": "0.5", "TOUCHSTREAM_IMAP_TIMEOUT": "5",
        "TOUCHSTREAM_EMAIL_STAFF": "shop.example", "TOUCHSTREAM_EMAIL_MAX_BYTES": "200000",
    })
    return env


@pytest.fixture
def hub(mailbox: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(mailbox)
    yield h
    h.close()
