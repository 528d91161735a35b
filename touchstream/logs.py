"""Logs: one event per line, JSON for machines or plain text for a person at a terminal.

``configure(fmt)`` installs one handler on the root logger (stderr):

* ``json``: one JSON object per line — ``ts`` (ISO 8601, UTC), ``level``, ``logger``,
  ``msg``, and when known the ``request_id``, ``key_id`` and ``customer_id`` of the
  HTTP request the line belongs to (``exc`` holds a traceback);
* ``text``: ``LEVEL logger: msg [request_id=… key_id=…]`` for a terminal;
* ``auto`` (``TOUCHSTREAM_LOG_FORMAT``'s default): text when stderr is a terminal,
  else JSON.

What goes in: ids, never personal content. The request log (``touchstream.observe``)
writes the route *template* (``/customers/{customer_id}``), never the raw path or query
(a screen-pop's ``?number=`` is a phone number); uvicorn's own access log, which would
write them, is switched off by ``touchstream serve``.

The request context is a ``ContextVar`` holding one mutable ``RequestContext``: the
request middleware sets it, the authorizer and the write model fill in the key and
customer ids. A thread pool copies the context, so the object (not the variable) is
what they change — the middleware reads it back when the request ends.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

FORMATS = ("auto", "json", "text")


@dataclass
class RequestContext:
    """The ids a log line of this request carries."""

    request_id: str
    key_id: str | None = None
    customer_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("touchstream_request", default=None)


def begin(request_id: str) -> tuple[RequestContext, Any]:
    """Start a request's context; ``end(token)`` when it is done."""
    ctx = RequestContext(request_id)
    return ctx, _current.set(ctx)


def end(token: Any) -> None:
    _current.reset(token)


def current() -> RequestContext | None:
    return _current.get()


def note_key(key_id: str) -> None:
    """The API key the current request authenticated with (no-op outside a request)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.key_id = key_id


def note_customer(customer_id: str | None) -> None:
    """The customer the current request is about, when it is about one."""
    ctx = _current.get()
    if ctx is not None and customer_id and ctx.customer_id is None:
        ctx.customer_id = customer_id


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}  # uvicorn's copy of msg with terminal colours


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Request ids, then the record's ``extra=`` fields."""
    out: dict[str, Any] = {}
    ctx = _current.get()
    if ctx is not None:
        out["request_id"] = ctx.request_id
        if ctx.key_id:
            out["key_id"] = ctx.key_id
        if ctx.customer_id:
            out["customer_id"] = ctx.customer_id
    for name, value in vars(record).items():
        if name not in _RESERVED and not name.startswith("_"):
            out[name] = value
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message [k=v …]`` for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        tail = (" [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]") if fields else ""
        text = f"{record.levelname:<8} {record.name}: {record.getMessage()}{tail}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def resolve(fmt: str, stream: TextIO | None = None) -> str:
    """``auto`` → ``text`` on a terminal, else ``json``."""
    if fmt != "auto":
        return fmt
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure(fmt: str = "auto", *, level: int = logging.INFO,
              stream: TextIO | None = None) -> str:
    """Route every logger (uvicorn's included) through one handler in ``fmt``; returns
    the format chosen."""
    stream = stream or sys.stderr
    chosen = resolve(fmt, stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers would print twice
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return chosen


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config`` for its worker processes: no handlers of its own (the
    worker calls ``configure``), and no access log (it would write raw paths)."""
    return {"version": 1, "disable_existing_loggers": False,
            "loggers": {"uvicorn.access": {"handlers": [], "propagate": False,
                                           "level": "CRITICAL"}}}
