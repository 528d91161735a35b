"""Request-head limits for the served app (OWASP "unrestricted resource consumption").

uvicorn's httptools protocol buffers a request's head without bound: a 32 MiB
header was read whole, without an API key, before any route ran. The protocol
below counts the bytes of the request line plus headers as they arrive and the
number of header lines, and past ``MAX_HEAD_BYTES`` or ``MAX_HEADERS`` answers
**431** in the one error shape (``touchstream.http_errors``) and closes the
connection, having buffered at most one socket read beyond the limit.

``serve`` passes ``HeaderLimitedProtocol`` as uvicorn's ``http`` protocol (a class
importable by name: with ``--workers N`` uvicorn pickles it to each worker).
Body and query-string limits are the app's (``touchstream.app.RequestLimits``).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from touchstream.http_errors import error_bytes

MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100


class HeadTooLargeError(Exception):
    """Raised (inside the parser) when a request has more header lines than allowed."""


class HeaderLimitedProtocol(HttpToolsProtocol):
    """httptools' protocol, refusing a request head over ``max_head_bytes`` or
    ``max_headers`` lines with 431."""

    max_head_bytes = MAX_HEAD_BYTES
    max_headers = MAX_HEADERS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_lines = 0
        self._refused: str | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_lines = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > self.max_headers:
            self._refused = f"more than {self.max_headers} request headers"
            raise HeadTooLargeError(self._refused)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._refused is None and self._head_bytes > self.max_head_bytes:
            self._refused = (f"request line and headers exceed {self.max_head_bytes} bytes")
            self._send_431()

    def send_400_response(self, msg: str) -> None:
        # The parser reports a callback's exception as a malformed request: say why.
        if self._refused is not None:
            self._send_431()
            return
        super().send_400_response(msg)

    def _send_431(self) -> None:
        if self.transport.is_closing():
            return
        body = error_bytes(431, self._refused or "request head too large")
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()

