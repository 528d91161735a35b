"""The bytes of an outbound email and the DSN request: the same on every attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes

from channels.email.outbound import build_message, dsn_options


@dataclass
class Item:
    message_id: str = "<4f1c@shop.example>"
    customer_id: str = "c1"
    envelope_id: str = "4f1c"
    queued_at: datetime = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    from_address: str = "mia@shop.example"
    to: list[str] = field(default_factory=lambda: ["ada@example.com"])
    cc: list[str] = field(default_factory=list)
    subject: str = "Re: Grüße"
    body_text: str = "Danke schön\nMia"
    in_reply_to: str | None = "<q1@example.com>"
    references: list[str] = field(default_factory=lambda: ["<q0@example.com>", "<q1@example.com>"])
    attempts: int = 0


def test_the_message_bytes_are_identical_on_every_build_and_carry_the_thread_headers() -> None:
    first, second = build_message(Item()), build_message(Item())
    assert first == second
    msg = message_from_bytes(first)
    assert msg["Message-ID"] == "<4f1c@shop.example>"
    assert msg["In-Reply-To"] == "<q1@example.com>"
    assert msg["References"] == "<q0@example.com> <q1@example.com>"
    assert msg["Date"] == "Tue, 24 Nov 2026 09:30:00 +0000"
    assert first.count(b"\n") == first.count(b"\r\n")  # SMTP line endings throughout


def test_dsn_is_requested_only_from_servers_that_offer_it() -> None:
    assert dsn_options(True, "4f1c") == (["RET=HDRS", "ENVID=4f1c"], ["NOTIFY=FAILURE,DELAY"])
    assert dsn_options(False, "4f1c") == ([], [])
