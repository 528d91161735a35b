"""Asterisk cdr_csv rows → calls: quoting, optional columns, local time around DST."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.phone.cdr import CdrOptions, MalformedCdrError, parse_line, source_key, to_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")


def lines(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().split(b"\n")


def test_quoted_fields_with_commas_and_doubled_quotes_are_read_whole() -> None:
    record = parse_line(lines("Master.csv")[0], UTC_ZONE)
    assert record.fields["clid"] == '"Smith, John" <02079460018>'
    assert record.fields["lastdata"] == "support,t,,,300"
    assert record.fields["userfield"] == 'vip, "gold"'
    assert record.uniqueid == "1732438800.1"
    cmd = to_command(record, CdrOptions(timezone=UTC_ZONE))
    assert (cmd.direction, cmd.from_number, cmd.queue, cmd.agent) == (
        "inbound", "02079460018", "support", "SIP/201")
    assert (cmd.outcome, cmd.duration_s, cmd.wait_s) == ("answered", 312, 41)
    assert cmd.occurred_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC_ZONE)
    assert cmd.source_key == "cdr:1732438800.1"


def test_unanswered_queue_call_is_missed_with_its_ring_time_as_wait() -> None:
    cmd = to_command(parse_line(lines("Master.csv")[1], UTC_ZONE), CdrOptions(timezone=UTC_ZONE))
    assert (cmd.outcome, cmd.wait_s, cmd.duration_s, cmd.agent) == ("missed", 30, None, None)


def test_row_without_uniqueid_is_keyed_by_a_hash_of_its_bytes() -> None:
    raw = lines("Master.csv")[2]
    record = parse_line(raw, UTC_ZONE)
    assert record.uniqueid is None
    assert source_key(record).startswith("cdr-row:")
    assert source_key(parse_line(raw, UTC_ZONE)) == source_key(record)
    cmd = to_command(record, CdrOptions(timezone=UTC_ZONE))
    assert cmd.direction == "outbound" and cmd.to_number == "02079460999"


@pytest.mark.parametrize("raw, reason", [
    (b'"","1","2","ctx","","c"', "columns"),
    (b'"","1","2","ctx","","c","d","Dial","x","2026-11-24 25:00:00","","2026-11-24 09:00:00",'
     + b'1,0,"ANSWERED","DOCUMENTATION"', "start"),
    (b'"","1","2","ctx","","c","d","Dial","x","2026-11-24 09:00:00","","2026-11-24 09:00:01",'
     + b'one,0,"ANSWERED","DOCUMENTATION"', "duration"),
    (b'"","1","2","ctx","","c","d","Dial","x","2026-11-24 09:00:00","","2026-11-24 09:00:01",'
     + b'1,0,"MAYBE","DOCUMENTATION"', "disposition"),
    (b'"","1","2","ctx","un"closed,"c"', "quoting"),
])
def test_malformed_rows_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedCdrError, match=reason):
        parse_line(raw, UTC_ZONE)


def test_local_time_across_the_spring_gap_becomes_the_right_instant() -> None:
    record = parse_line(lines("dst-london.csv")[0], LONDON)
    assert record.start == datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC)
    assert record.end == datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC)
    assert (record.end - record.start).total_seconds() == record.duration


def test_repeated_autumn_hour_is_resolved_by_the_rows_duration() -> None:
    record = parse_line(lines("dst-london.csv")[1], LONDON)
    # 01:59:30 BST (00:59:30 UTC) → 01:00:30 GMT (01:00:30 UTC): the clock went back.
    assert record.start == datetime(2026, 10, 25, 0, 59, 30, tzinfo=UTC)
    assert record.end == datetime(2026, 10, 25, 1, 0, 30, tzinfo=UTC)
    assert record.answer == datetime(2026, 10, 25, 0, 59, 40, tzinfo=UTC)
    cmd = to_command(record, CdrOptions(timezone=LONDON))
    assert cmd.wait_s == 10 and cmd.duration_s == 50
