"""The fetcher's own reader of FETCH responses answers as imapclient's reader does."""

from __future__ import annotations

from typing import Any

import pytest
from imapclient.response_parser import parse_fetch_response

from channels.email.fetcher import PRIVATE_CALLS_THERE, read_fetched, read_sizes

DATE = b'INTERNALDATE "01-Dec-2026 04:07:00 +0100"'


def _message(seq: int, uid: int, body: bytes, section: bytes = b"BODY[]",
             date: bytes = DATE) -> list[Any]:
    return [(b"%d (UID %d %s %s {%d}" % (seq, uid, date, section, len(body)), body), b")"]


PLAIN = [
    [None],
    _message(1, 11, b"From: a@x\r\n\r\nhi\r\n") + _message(2, 12, b"\r\n")
    + _message(3, 40, b"Subject: big\r\n\r\n", b"BODY[HEADER]"),
    _message(7, 7, b"x", date=b'INTERNALDATE "not a date"'),  # imapclient: None
]


@pytest.mark.parametrize("data", PLAIN)
@pytest.mark.parametrize("normalise", [False, True])
def test_plain_responses_read_as_imapclient_reads_them(data: list[Any], normalise: bool) -> None:
    expected = dict(parse_fetch_response(data, normalise, True))
    got = read_fetched(data, normalise)
    assert got == expected
    for uid, item in expected.items():  # same keys in the same order, same value types
        assert list(got[uid]) == list(item)  # type: ignore[index]
        assert [type(v) for v in got[uid].values()] == [type(v) for v in item.values()]  # type: ignore[index]


OTHER = [
    # an unsolicited flag change of another message amid the answer
    _message(1, 11, b"a") + [b"5 (FLAGS (\\Seen))"] + _message(2, 12, b"b"),
    # the items in another order
    [(b"1 (INTERNALDATE \"01-Dec-2026 04:07:00 +0100\" BODY[] {1}", b"a"), b" UID 11)"],
    [b"1 (UID 11 INTERNALDATE \"01-Dec-2026 04:07:00 +0100\" BODY[] NIL)"],  # no literal
    _message(1, 11, b"a") + _message(1, 11, b"a"),  # one UID twice: imapclient merges
]


@pytest.mark.parametrize("data", OTHER)
def test_anything_else_is_left_to_imapclient(data: list[Any]) -> None:
    assert read_fetched(data, False) is None
    parse_fetch_response(data, False, True)  # which reads it


SIZES = [
    [None],
    [b"1 (UID 11 RFC822.SIZE 1234)", b"2 (UID 12 RFC822.SIZE 0)"],
]


@pytest.mark.parametrize("data", SIZES)
def test_plain_size_listings_read_as_imapclient_reads_them(data: list[Any]) -> None:
    expected = dict(parse_fetch_response(data, False, True))
    assert read_sizes(data) == expected


@pytest.mark.parametrize("data", [
    [b"1 (UID 11 RFC822.SIZE 1234)", b"5 (FLAGS (\\Seen))"],  # an unsolicited response
    [b"1 (RFC822.SIZE 1234 UID 11)"],  # another order
    [b"1 (UID 11 RFC822.SIZE 1)", b"1 (UID 11 RFC822.SIZE 1)"],  # one UID twice
])
def test_any_other_size_listing_is_left_to_imapclient(data: list[Any]) -> None:
    assert read_sizes(data) is None
    parse_fetch_response(data, False, True)


def test_the_private_calls_the_fast_fetch_makes_are_there() -> None:
    # Without them the fetcher falls back to imapclient's own fetch: still correct, a
    # quarter slower. An upgrade of imapclient or Python that removes one fails here.
    assert PRIVATE_CALLS_THERE
