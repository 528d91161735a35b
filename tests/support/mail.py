"""Raw test messages (CRLF line endings, as an IMAP server stores them) and event readers."""

from __future__ import annotations

import base64
from typing import Any

from commands.hub import Hub


def message(
    n: int, *, sender: str = "ada@example.com", to: str = "support@shop.example",
    subject: str | None = None, body: str | None = None, message_id: str | None = "auto",
    headers: str = "", size_pad: int = 0,
) -> bytes:
    mid = f"<m{n}@example.com>" if message_id == "auto" else message_id
    lines = [f"From: Ada <{sender}>", f"To: {to}", f"Subject: {subject or f'Question {n}'}",
             "Date: Tue, 24 Nov 2026 10:00:00 +0000"]
    if mid:
        lines.append(f"Message-ID: {mid}")
    if headers:
        lines.extend(headers.strip().splitlines())
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", ""]
    text = body if body is not None else f"Hello, this is message {n}.\n" + "x" * size_pad
    return ("\r\n".join(lines) + "\r\n" + text.replace("\n", "\r\n") + "\r\n").encode()


def multipart(n: int, parts: list[tuple[str, bytes, str | None]], sender: str = "ada@example.com",
              extra: str = "") -> bytes:
    """parts: (content-type, payload, filename)."""
    boundary = f"b{n}xyz"
    out = [f"From: {sender}", "To: support@shop.example", f"Subject: multipart {n}",
           f"Message-ID: <mp{n}@example.com>", "MIME-Version: 1.0",
           f'Content-Type: multipart/mixed; boundary="{boundary}"']
    if extra:
        out.extend(extra.strip().splitlines())
    out.append("")
    body = "\r\n".join(out).encode() + b"\r\n"
    for ctype, payload, filename in parts:
        body += f"--{boundary}\r\nContent-Type: {ctype}\r\n".encode()
        if filename:
            body += f'Content-Disposition: attachment; filename="{filename}"\r\n'.encode()
        body += b"Content-Transfer-Encoding: base64\r\n\r\n"
        body += base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return body + f"--{boundary}--\r\n".encode()


def all_events(hub: Hub) -> list[Any]:
    out: list[Any] = []
    start = 1
    while True:
        batch = hub.recorder.select_notifications(start, 500)
        if not batch:
            return out
        out.extend(hub.mapper.to_domain_event(n) for n in batch)
        start = batch[-1].id + 1


def of_type(events: list[Any], name: str) -> list[Any]:
    return [e for e in events if type(e).__qualname__.endswith(name)]
