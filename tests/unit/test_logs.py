"""Log lines: JSON or text, the request's ids on each, the format chosen by the terminal."""

from __future__ import annotations

import io
import json
import logging

from touchstream import logs
from touchstream.observe import request_id_of


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(msg: str = "request", **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("touchstream.request", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    assert logs.resolve("auto", Terminal()) == "text"
    assert logs.resolve("auto", io.StringIO()) == "json"
    assert logs.resolve("json", Terminal()) == "json"


def test_a_line_carries_the_ids_of_its_request_and_its_extra_fields() -> None:
    _, token = logs.begin("req-1")
    try:
        logs.note_key("key_abc")
        logs.note_customer("c-1")
        logs.note_customer("c-2")  # the first customer named is the request's
        line = json.loads(logs.JsonFormatter().format(record(route="/x", status=200)))
        text = logs.TextFormatter().format(record(route="/x"))
    finally:
        logs.end(token)
    assert (line["request_id"], line["key_id"], line["customer_id"]) == ("req-1", "key_abc", "c-1")
    assert (line["msg"], line["route"], line["status"], line["level"]) == (
        "request", "/x", 200, "info")
    assert text.startswith("INFO") and "request_id=req-1" in text and "route=/x" in text
    assert "request_id" not in json.loads(logs.JsonFormatter().format(record()))


def test_an_unusable_request_id_is_replaced() -> None:
    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"x-request-id", value)]}

    assert request_id_of(scope(b"abc-123_x.y:z/q")) == "abc-123_x.y:z/q"
    for bad in (b"has space", b"x" * 129, b"", b"new\nline", "caf\u00e9".encode()):
        made = request_id_of(scope(bad))
        assert len(made) == 32 and made != bad.decode()
    assert len(request_id_of({"headers": []})) == 32
