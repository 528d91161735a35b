"""The fetch-ahead worker's loop (``channels.email.fetcher.serve``) with a stand-in server."""

from __future__ import annotations

import io
import logging
import pickle
from datetime import datetime
from typing import Any

from imapclient.fixed_offset import FixedOffset

from channels.email.config import ImapConfig
from channels.email.fetcher import _parsed_from, serve
from channels.email.parse import MessageRejectedError, ParsedEmail
from tests.support.mail import message

CONFIG = ImapConfig(host="imap.invalid", port=143, user="u", password="p", security="plain")
DEEP = b"".join(  # nested deeper than the limit given below (3)
    f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(6)
) + b"Content-Type: text/plain\r\n\r\nhi\r\n"


class Server:
    def __init__(self, uidvalidity: int, messages: dict[int, bytes]) -> None:
        self.uidvalidity = uidvalidity
        self.messages = messages
        self.selected: tuple[str, bool] | None = None
        self.logged_out = False

    def select_folder(self, folder: str, readonly: bool) -> dict[bytes, Any]:
        self.selected = (folder, readonly)
        return {b"UIDVALIDITY": self.uidvalidity}

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        when = datetime(2026, 11, 24, 10, 0, tzinfo=FixedOffset(60))
        part = b"BODY[]" if "BODY.PEEK[]" in items else b"BODY[HEADER]"
        return {u: {part: self.messages[u], b"INTERNALDATE": when} for u in uids}

    def logout(self) -> None:
        self.logged_out = True


def run(server: Server, *requests: object) -> list[tuple[str, Any]]:
    source = io.BytesIO(b"".join(pickle.dumps(r) for r in
                                 [(CONFIG, "INBOX", 7, 10_000, 3), *requests]))
    sink = io.BytesIO()
    serve(source, sink, lambda _: server)  # type: ignore[arg-type, return-value]
    sink.seek(0)
    answers = []
    while sink.tell() < len(sink.getvalue()):
        answers.append(pickle.load(sink))
    return answers


def test_each_batch_asked_for_is_answered_in_order_with_the_ingesters_parse() -> None:
    big = message(3, size_pad=20_000)
    server = Server(7, {1: message(1), 2: DEEP, 3: big})
    answers = run(server, ([1, 2], {1: 100, 2: 100}), ([3], {3: len(big)}))
    assert server.selected == ("INBOX", True) and server.logged_out  # read-only, closed
    assert [kind for kind, _ in answers] == ["ok", "ok"]
    first, second = (value for _, value in answers)
    item, parsed = first[1]
    assert isinstance(_parsed_from(parsed), ParsedEmail)
    assert item[b"BODY[]"] == message(1)
    assert item[b"INTERNALDATE"].isoformat() == "2026-11-24T10:00:00+01:00"
    rejected = _parsed_from(first[2][1])
    assert isinstance(rejected, MessageRejectedError) and rejected.reason == "too-deep"
    item, parsed = second[3]  # over the limit: only its header, never parsed
    assert b"BODY[HEADER]" in item and parsed is None


def test_a_renumbered_folder_is_a_server_error_and_nothing_is_fetched() -> None:
    server = Server(8, {1: message(1)})
    ((kind, (text, server_side)),) = run(server, ([1], {1: 100}))
    assert kind == "error" and server_side and "UIDVALIDITY 7 -> 8" in text
    assert server.logged_out


def test_the_protocol_trace_is_off_unless_its_logger_wants_debug_lines() -> None:
    from types import SimpleNamespace

    from channels.email.fetcher import quiet_protocol_log

    logger = logging.getLogger("imapclient.imaplib")
    level = logger.level
    try:
        client: Any = SimpleNamespace(_imap=SimpleNamespace(debug=5))  # as imapclient sets it
        logger.setLevel(logging.WARNING)
        quiet_protocol_log(client)
        assert client._imap.debug == 0
        client._imap.debug = 5
        logger.setLevel(logging.DEBUG)
        quiet_protocol_log(client)
        assert client._imap.debug == 5  # someone reads the trace: left on
    finally:
        logger.setLevel(level)
