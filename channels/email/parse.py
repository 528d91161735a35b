"""Raw RFC 5322 bytes → a plain ``ParsedEmail``, with the standard library, inside a guard.

Anything the parser cannot take (a crash, 2,000 nested multiparts, nesting
deeper than the configured limit) raises ``MessageRejectedError`` with a
reason; the caller quarantines the message and keeps its raw bytes, so a
better parser can re-derive it later. Every walk over the MIME tree is
iterative: the tree may be deeper than Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser, Parser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from itertools import pairwise


class MessageRejectedError(Exception):
    """Raised when a message cannot be parsed; ``reason`` is a quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail[:2000]


@dataclass(frozen=True)
class Part:
    """An attachment (or inline non-text part): its bytes go to the blob store."""

    data: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True)
class DeliveryStatus:
    """One recipient block of a DSN (RFC 3464)."""

    recipient: str | None
    action: str
    status: str | None
    diagnostic: str | None


@dataclass
class ParsedEmail:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_address: str | None
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    body_text: str
    attachments: list[Part] = field(default_factory=list)
    is_report: bool = False
    envelope_id: str | None = None
    original_message_id: str | None = None
    statuses: list[DeliveryStatus] = field(default_factory=list)


_MSGID = re.compile(r"<[^<>\s]+>")


def parse_message(raw: bytes, max_depth: int = 50) -> ParsedEmail:
    """Parse ``raw``; raise ``MessageRejectedError`` when it cannot be understood."""
    try:
        # compat32: the header registry of policy.default costs ~5 ms per message; headers
        # are decoded here, only the few we keep.
        msg = _split_plain(raw) or BytesParser(policy=policy.compat32).parsebytes(raw)
    except RecursionError as exc:
        raise MessageRejectedError("too-deep", "MIME nesting exceeds the parser's limits") from exc
    except Exception as exc:  # the parser is not supposed to raise; keep the bytes if it does
        raise MessageRejectedError("unparseable", f"{type(exc).__name__}: {exc}") from exc
    leaves = _leaves(msg, max_depth)
    try:
        return _build(msg, leaves)
    except RecursionError as exc:
        raise MessageRejectedError("too-deep", "MIME nesting exceeds the parser's limits") from exc
    except Exception as exc:
        raise MessageRejectedError("unparseable", f"{type(exc).__name__}: {exc}") from exc


def parse_fetched(raw: bytes, complete: bool, size: int, max_bytes: int,
                  max_depth: int) -> ParsedEmail | MessageRejectedError | None:
    """A fetched message's parse: None when it is oversized (or only its header was
    fetched), the reason when it cannot be parsed."""
    if not complete or size > max_bytes:
        return None
    try:
        return parse_message(raw, max_depth)
    except MessageRejectedError as exc:
        return exc


# -- the MIME tree of plain messages without the line-by-line feed parser ------------

_SPLIT_DEPTH = 8


def _split_plain(raw: bytes) -> Message | None:
    """The tree ``BytesParser(policy=compat32)`` builds from ``raw``, for plain messages.

    The feed parser walks every line of every part in Python (~40% of parsing a
    message with an attachment). This cuts the same tree with ``str.find``: each part's
    header block is still read by the library (``headersonly``), payloads are the same
    slices of the same text, the newline before a boundary belongs to the boundary.
    Only for what the feed parser reads without a defect: CRLF line ends only, every
    header block ending in an empty line, a boundary for every multipart, a close
    delimiter, no repeated delimiter lines, no message/* part (they are parsed as
    messages of their own) and no digest; None otherwise, and the caller parses with the
    feed parser."""
    text = raw.decode("ascii", "surrogateescape")  # as BytesParser reads bytes
    crlf = text.count("\r\n")
    if text.count("\r") != crlf or text.count("\n") != crlf:  # a bare CR or LF somewhere
        return None
    try:
        return _split_part(text, 0, nested=False)
    except Exception:  # anything unexpected: the feed parser decides
        return None


def _split_part(text: str, depth: int, *, nested: bool) -> Message | None:
    if depth > _SPLIT_DEPTH:
        return None
    if text.startswith("\r\n"):
        head, body = "", text[2:]
    else:
        end = text.find("\r\n\r\n")
        if end < 0:
            return None
        head, body = text[:end + 2], text[end + 4:]
    msg = Parser(policy=policy.compat32).parsestr(head + "\r\n", headersonly=True)
    if msg.defects or msg.get_payload():  # a line that is no header: the feed parser's call
        return None
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        if nested and body.endswith("\r\n"):  # the newline before a boundary is the boundary's
            body = body[:-2]
        msg.set_payload(body)
        return msg
    boundary = msg.get_boundary()
    if boundary is None or msg.get_content_type() == "multipart/digest" or str(
            msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
        return None
    cut = _cut(body, boundary)
    if cut is None:
        return None
    preamble, contents, epilogue = cut
    msg.set_payload(None)  # the headers-only parse left an empty text payload
    if preamble is not None:
        msg.preamble = preamble
    for content in contents:
        part = _split_part(content, depth + 1, nested=True)
        if part is None:
            return None
        msg.attach(part)
    if nested:  # as the enclosing multipart's loop trims it
        epilogue = epilogue[:-2] if epilogue.endswith("\r\n") else (epilogue or None)
    msg.epilogue = epilogue
    return msg


def _cut(body: str, boundary: str) -> tuple[str | None, list[str], str] | None:
    """Preamble, part texts and epilogue of a multipart body, as the feed parser cuts
    them; None if it would note a defect or repeated delimiters."""
    separator = "--" + boundary
    lines: list[tuple[int, int, bool]] = []  # delimiter lines: start, end, closing
    at = 0 if body.startswith(separator) else body.find("\r\n" + separator)
    while at >= 0:
        start = at if at == 0 and body.startswith(separator) else at + 2
        stop = body.find("\r\n", start)
        stop = len(body) if stop < 0 else stop + 2
        # the feed parser's delimiter line: separator, "--" when closing, blanks, line end
        tail = body[start + len(separator):stop].removesuffix("\r\n")
        closing = tail.startswith("--")
        if not tail[2 if closing else 0:].strip(" \t"):
            lines.append((start, stop, closing))
            if closing:
                break
        at = body.find("\r\n" + separator, start)
    if len(lines) < 2 or lines[0][2] or not lines[-1][2]:
        return None  # no part, or no close delimiter
    for (_, stop, _), (start, _, _) in pairwise(lines):
        if start == stop:
            return None  # repeated delimiter lines: the feed parser swallows them
    preamble = body[:lines[0][0] - 2] if lines[0][0] else None
    contents = [body[stop:start] for (_, stop, _), (start, _, _) in pairwise(lines)]
    return preamble, contents, body[lines[-1][1]:]


def _leaves(msg: Message, max_depth: int) -> list[Message]:
    """Leaf parts in document order; message/* parts count as leaves (attachments)."""
    out: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if depth > max_depth:
            raise MessageRejectedError("too-deep", f"MIME nesting deeper than {max_depth}")
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in reversed(children))
                continue
        out.append(part)
    return out


def _build(msg: Message, leaves: list[Message]) -> ParsedEmail:
    text: str | None = None
    html: str | None = None
    attachments: list[Part] = []
    inline_named: list[Message] = []  # text in an inline part with a filename: body if none else
    for part in leaves:
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if ctype == "text/plain" and text is None and disposition != "attachment" and not filename:
            text = _text(part)
        elif ctype == "text/html" and html is None and disposition != "attachment" and not filename:
            html = _text(part)
        elif ctype.startswith("multipart/"):
            # A multipart whose boundary never appears: read its parts tolerantly.
            found = _broken_multipart_text(part)
            if text is None and found:
                text = found
        else:
            if ctype in ("text/plain", "text/html") and disposition != "attachment":
                inline_named.append(part)
            attachments.append(Part(_bytes(part), ctype, filename))
    if text is None and html is None and inline_named:
        plain = [p for p in inline_named if p.get_content_type() == "text/plain"]
        chosen = (plain or inline_named)[0]
        text = _text(chosen) if plain else None
        html = None if plain else _text(chosen)
    if text is None and html is not None:
        text = html_to_text(html)
    headers = _headers(msg)  # one pass over the header block for the eight read here
    parsed = ParsedEmail(
        message_id=_msgid(_header(headers, "Message-ID")),
        in_reply_to=_msgid(_header(headers, "In-Reply-To")),
        references=_MSGID.findall(_header(headers, "References") or "")[:200],
        from_address=next(iter(_addresses(headers, "From")), None),
        to=_addresses(headers, "To"),
        cc=_addresses(headers, "Cc"),
        subject=(_header(headers, "Subject") or "").strip(),
        date=_date(_header(headers, "Date")),
        body_text=(text or "").replace("\x00", "").strip(),  # NUL: no text column takes it
        attachments=attachments,
    )
    if msg.get_content_type() == "multipart/report" and (
        (msg.get_param("report-type") or "").lower() == "delivery-status"
    ):
        _read_report(parsed, leaves)
    return parsed


# -- headers -------------------------------------------------------------------


def _clean(value: str) -> str:
    """8-bit header bytes arrive surrogate-escaped: raw UTF-8 (RFC 6532) is decoded as
    such; bytes that are not UTF-8 become U+FFFD."""
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


_UNSTRUCTURED = {"subject", "x-filename", "comments"}
_PLAIN_TEXT = re.compile(r"[\x20-\x7e\t]*")  # one line of ASCII: the registry returns it as is


def _decode(name: str, value: object) -> str:
    """A header value as ``email.policy.default`` reads it: raw UTF-8 accepted, encoded
    words in any charset decoded (broken ones where the library manages), unfolded."""
    text = _clean(str(value))
    if name.lower() in _UNSTRUCTURED and ("=?" in text or not _PLAIN_TEXT.fullmatch(text)):
        # ids, dates and references carry no encoded words, nor does plain one-line text
        try:
            text = str(policy.default.header_factory(name, text))
        except Exception:  # the header registry gave up: keep the raw text, as it came
            pass
    return re.sub(r"\r?\n[ \t]*", " ", text).replace("\x00", "")


def _headers(msg: Message) -> dict[str, list[str]]:
    """A header block's raw values by lower-cased name, in order."""
    out: dict[str, list[str]] = {}
    for k, v in msg.raw_items():
        out.setdefault(k.lower(), []).append(str(v))
    return out


def _header(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name.lower())
    return _decode(name, values[0]) if values else None


# A mailbox list in its plain form: ``addr-spec`` or ``Display Name <addr-spec>`` with
# dot-atom local part and domain, ASCII atoms only (no quotes, comments, encoded words,
# groups or folding). The header registry would read exactly these addr-specs from it,
# at ~1 ms a header; anything else goes to the registry.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_WORD = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"  # phrase atoms: no '=' or '?' (encoded words)
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:{_WORD}(?:[ \t]+{_WORD})*[ \t]*)?<({_DOT_ATOM}@{_DOT_ATOM})>"
    rf"|({_DOT_ATOM}@{_DOT_ATOM}))[ \t]*")


def plain_addresses(text: str) -> list[str] | None:
    """The addr-specs of a mailbox list in its plain form; None if it is not plain."""
    out = []
    for item in text.split(","):
        found = _PLAIN_MAILBOX.fullmatch(item)
        if found is None:
            return None
        out.append(found.group(1) or found.group(2))
    return out


def _addresses(headers: dict[str, list[str]], name: str) -> list[str]:
    found: list[str] = []
    for raw in headers.get(name.lower(), ()):
        text = _clean(raw)
        plain = plain_addresses(text)
        if plain is not None:
            found += plain
            continue
        try:
            header = policy.default.header_factory(name, text)
            found += [a.addr_spec for a in header.addresses]  # type: ignore[attr-defined]
        except Exception:  # not parseable as an address list: the tolerant compat32 reader
            found += [a for _, a in getaddresses([text])]
    out: list[str] = []
    for addr in found:
        addr = normalise_address(addr)
        if "@" in addr and addr not in out and len(addr) <= 500:
            out.append(addr)
    return out


def normalise_address(addr: str) -> str:
    """``local@domain`` with the domain lower-cased and IDNA-encoded (``bücher.example`` →
    ``xn--bcher-kva.example``), as contact points are; left as is when IDNA refuses it."""
    local, sep, domain = addr.strip().strip("<>").rpartition("@")
    if not sep:
        return addr.strip()
    domain = domain.strip().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"{local}@{domain.lower()}"


def _msgid(value: str | None) -> str | None:
    if not value:
        return None
    found = _MSGID.search(value)
    ident = found.group(0) if found else value.strip()
    return ident if 0 < len(ident) <= 500 and not any(c.isspace() for c in ident) else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return _decode("X-Filename", name)[:500] if name else None


# -- bodies --------------------------------------------------------------------


def _bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message" and part.is_multipart():
        inner = part.get_payload()
        try:
            return inner[0].as_bytes() if isinstance(inner, list) and inner else b""  # type: ignore[no-any-return]
        except Exception:
            return b""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _text(part: Message) -> str:
    data = _bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except (LookupError, ValueError):  # unknown or unusable charset
        return data.decode("utf-8", errors="replace")


_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200}?)(--)?[ \t\r]*$", re.MULTILINE)


def _broken_multipart_text(part: Message) -> str | None:
    """Text from a multipart whose declared boundary never appears (a tolerant walk):
    split on the delimiter lines actually present, else take the whole payload as text."""
    payload = part.get_payload()
    if not isinstance(payload, str) or not payload.strip():
        return None
    data = payload.encode("utf-8", "surrogateescape")
    found = _BOUNDARY_LINE.search(payload)
    if found is None:
        return _clean(payload).strip() or None
    boundary = found.group(1)
    fixed = (f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n').encode() + data
    try:
        inner = BytesParser(policy=policy.compat32).parsebytes(fixed)
        leaves = _leaves(inner, 5)
    except (MessageRejectedError, RecursionError, ValueError, LookupError):  # still broken
        return None
    for leaf in leaves:
        if leaf.get_content_type() == "text/plain":
            return _text(leaf)
    for leaf in leaves:
        if leaf.get_content_type() == "text/html":
            return html_to_text(_text(leaf))
    return None


class _TextExtractor(HTMLParser):
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML (tags dropped, scripts/styles skipped, blocks on lines)."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html)
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(extractor.chunks).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- delivery status notifications (RFC 3464) -----------------------------------


def _fields_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for block in payload:
            blocks.append({k.lower(): _clean(str(v)).strip() for k, v in block.raw_items()})
        return blocks
    text = _text(part).replace("\r\n", "\n")
    for chunk in re.split(r"\n\s*\n", text):
        fields = HeaderParser(policy=policy.compat32).parsestr(chunk.strip() + "\n")
        if fields.keys():
            blocks.append({k.lower(): str(v).strip() for k, v in fields.items()})
    return blocks


def _read_report(parsed: ParsedEmail, leaves: list[Message]) -> None:
    parsed.is_report = True
    for part in leaves:
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _fields_blocks(part):
                if "original-envelope-id" in block:
                    parsed.envelope_id = block["original-envelope-id"][:200]
                recipient = block.get("final-recipient") or block.get("original-recipient")
                if recipient is None and "action" not in block:
                    continue
                addr = (recipient or "").partition(";")[2].strip() or None
                parsed.statuses.append(DeliveryStatus(
                    recipient=addr, action=block.get("action", "failed").lower()[:100],
                    status=(block.get("status") or None), diagnostic=block.get("diagnostic-code"),
                ))
        elif ctype == "text/rfc822-headers" and parsed.original_message_id is None:
            headers = HeaderParser(policy=policy.compat32).parsestr(_text(part))
            parsed.original_message_id = _msgid(headers.get("Message-ID"))
        elif ctype == "message/rfc822" and parsed.original_message_id is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                parsed.original_message_id = _msgid(_header(_headers(inner[0]), "Message-ID"))
