"""Asterisk ``cdr_csv`` rows (``Master.csv``) → one ``LogCall`` per call.

No header row; 16 standard columns, then ``uniqueid`` and ``userfield`` when
enabled; ``"``-quoted with doubled quotes; times in the PBX's local time
(``usegmtime=no``) — turned into UTC datetimes with ``zoneinfo``; an
ambiguous wall-clock time in the autumn hour is resolved by the row's own
duration (``end - start`` must equal ``duration``).
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from commands import messages as m

COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
OPTIONAL_COLUMNS = ("uniqueid", "userfield")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DISPOSITIONS = {
    "ANSWERED": "answered",
    "NO ANSWER": "missed",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
_DIGITS = re.compile(r"\D")


class MalformedCdrError(ValueError):
    """Raised when a line is not a ``cdr_csv`` record Touchstream can read."""


@dataclass(frozen=True)
class CdrOptions:
    timezone: ZoneInfo
    direction: str = "auto"  # auto | inbound | outbound
    internal_max_digits: int = 5


@dataclass(frozen=True)
class CdrRecord:
    fields: dict[str, str]
    start: datetime
    answer: datetime | None
    end: datetime
    duration: int
    billsec: int
    row_hash: str

    @property
    def uniqueid(self) -> str | None:
        return self.fields.get("uniqueid") or None


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")  # caller-id names written by older PBXs


def _split(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise MalformedCdrError(f"bad CSV quoting: {exc}") from exc
    if len(rows) != 1:
        raise MalformedCdrError("not exactly one CSV record")
    return rows[0]


def _naive(value: str, column: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, TIME_FORMAT)
    except ValueError as exc:
        raise MalformedCdrError(f"{column} {value!r} is not {TIME_FORMAT}") from exc


def _int(value: str, column: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise MalformedCdrError(f"{column} {value!r} is not an integer") from exc
    if number < 0:
        raise MalformedCdrError(f"{column} is negative")
    return number


def _localise(
    start: datetime, end: datetime, duration: int, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """Aware start and end; in the repeated autumn hour pick the folds that fit ``duration``."""
    best: tuple[float, datetime, datetime] | None = None
    for fs in (0, 1):
        for fe in (0, 1):
            # Arithmetic in UTC: datetimes sharing a tzinfo subtract as wall-clock times.
            s = start.replace(tzinfo=tz, fold=fs).astimezone(UTC)
            e = end.replace(tzinfo=tz, fold=fe).astimezone(UTC)
            miss = abs((e - s).total_seconds() - duration) if e >= s else float("inf")
            if best is None or miss < best[0]:
                best = (miss, s, e)
    assert best is not None
    return best[1], best[2]


def _between(value: datetime, low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    for fold in (0, 1):
        aware = value.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if low <= aware <= high:
            return aware
    return value.replace(tzinfo=tz).astimezone(UTC)


def parse_line(line: bytes, tz: ZoneInfo) -> CdrRecord:
    """One line (without its newline) → a record, or ``MalformedCdrError`` saying why."""
    values = _split(_decode(line.rstrip(b"\r")))
    expected = (len(COLUMNS), len(COLUMNS) + 1, len(COLUMNS) + 2)
    if len(values) not in expected:
        raise MalformedCdrError(f"{len(values)} columns; a cdr_csv row has 16, 17 or 18")
    fields = dict(zip(COLUMNS + OPTIONAL_COLUMNS, values, strict=False))
    start = _naive(fields["start"], "start")
    end = _naive(fields["end"], "end")
    if start is None or end is None:
        raise MalformedCdrError("start and end times are required")
    answer = _naive(fields["answer"], "answer")
    duration = _int(fields["duration"], "duration")
    billsec = _int(fields["billsec"], "billsec")
    if billsec > duration:
        raise MalformedCdrError("billsec is longer than duration")
    if fields["disposition"] not in DISPOSITIONS:
        raise MalformedCdrError(f"unknown disposition {fields['disposition']!r}")
    aware_start, aware_end = _localise(start, end, duration, tz)
    return CdrRecord(
        fields=fields,
        start=aware_start,
        answer=_between(answer, aware_start, aware_end, tz) if answer else None,
        end=aware_end,
        duration=duration,
        billsec=billsec,
        row_hash=hashlib.sha256(line.rstrip(b"\r")).hexdigest(),
    )


def _is_internal(number: str, max_digits: int) -> bool:
    digits = _DIGITS.sub("", number)
    return 0 < len(digits) <= max_digits and not number.startswith("+")


def _direction(record: CdrRecord, options: CdrOptions) -> str:
    if options.direction in ("inbound", "outbound"):
        return options.direction
    src, dst = record.fields["src"], record.fields["dst"]
    internal = options.internal_max_digits
    if _is_internal(src, internal) and not _is_internal(dst, internal):
        return "outbound"
    return "inbound"


def _peer(channel: str) -> str | None:
    """``SIP/201-0000002a`` → ``SIP/201`` (the agent's device)."""
    if not channel:
        return None
    return channel.rsplit("-", 1)[0] if "-" in channel else channel


def source_key(record: CdrRecord) -> str:
    """``uniqueid`` when the PBX writes it, else a hash of the row's bytes."""
    if record.uniqueid:
        return f"cdr:{record.uniqueid}"
    return f"cdr-row:{record.row_hash}"


def to_command(record: CdrRecord, options: CdrOptions) -> m.LogCall:
    f = record.fields
    direction = _direction(record, options)
    outcome = DISPOSITIONS[f["disposition"]]
    if outcome == "answered" and f["lastapp"].lower() == "voicemail":
        outcome = "voicemail"
    answered = record.answer is not None and outcome == "answered"
    queue = f["lastdata"].split(",")[0] or None if f["lastapp"].lower() == "queue" else None
    agent_channel = f["dstchannel"] if direction == "inbound" else f["channel"]
    return m.LogCall(
        call_id=record.uniqueid or f"cdr-{record.row_hash[:20]}",
        direction=direction,  # type: ignore[arg-type]
        from_number=f["src"] or None,
        to_number=f["dst"] or None,
        queue=queue,
        agent=_peer(agent_channel) if answered else None,
        outcome=outcome,  # type: ignore[arg-type]
        duration_s=record.billsec if answered else None,
        wait_s=_wait(record) if direction == "inbound" else None,
        summary=f.get("userfield") or None,
        occurred_at=record.start,
        source_key=source_key(record),
        actor="asterisk-cdr",
    )


def _wait(record: CdrRecord) -> int:
    if record.answer is not None:
        return max(0, int((record.answer - record.start) / timedelta(seconds=1)))
    return record.duration
