"""Opaque page cursors, validated and bound to what they page through.

A cursor is base64url of a small JSON array: its kind, the id it belongs to, and
its keyset position. Decoding checks every part (types, integer ranges that fit
the stores' 64-bit columns, the id): a cursor from another customer, another
route, or one tampered with answers 400, never reaches a query (a number ≥ 2^63
used to overflow SQLite's integer binding and answer 500).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson

from projections.timeline.view import Cursor

MAX_CURSOR_CHARS = 1000
_LIMIT = 2**62  # positions and microseconds since 1970 both fit comfortably


class CursorError(ValueError):
    """Raised when a cursor was not issued by this API for this resource."""


def _encode(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decode(text: str, kind: str, owner: str, size: int) -> list[Any]:
    problem = CursorError(f"cursor is not one this API returned for this {kind}")
    if len(text) > MAX_CURSOR_CHARS:
        raise problem
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise problem from exc
    if (not isinstance(parts, list) or len(parts) != size or parts[0] != kind
            or parts[1] != owner):
        raise problem
    return parts


def _bounded(value: Any, low: int) -> int:
    if type(value) is not int or not low <= value <= _LIMIT:
        raise CursorError("cursor is not one this API returned")
    return value


def timeline_cursor(cursor: Cursor, customer_id: str) -> str:
    """The public cursor for a timeline page of ``customer_id`` (the id the client asked for)."""
    return _encode(["timeline", customer_id, cursor.occurred_us, cursor.position, cursor.as_of])


def read_timeline_cursor(text: str, customer_id: str) -> Cursor:
    parts = _decode(text, "timeline", customer_id, 5)
    return Cursor(_bounded(parts[2], -_LIMIT), _bounded(parts[3], 0), _bounded(parts[4], 0))


def _query_key(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def search_cursor(query: str, name_key: str, customer_id: str) -> str:
    """The public cursor after the search hit (name_key, customer_id) of ``query``."""
    return _encode(["search", _query_key(query), name_key, customer_id])


def read_search_cursor(text: str, query: str) -> tuple[str, str]:
    parts = _decode(text, "search", _query_key(query), 4)
    if not all(isinstance(p, str) and len(p) <= 500 for p in parts[2:]):
        raise CursorError("cursor is not one this API returned for this search")
    return parts[2], parts[3]


def account_timeline_cursor(cursor: Cursor, account_id: str) -> str:
    """The public cursor for an account timeline page of ``account_id``."""
    return _encode(["account-timeline", account_id, cursor.occurred_us, cursor.position,
                    cursor.as_of])


def read_account_timeline_cursor(text: str, account_id: str) -> Cursor:
    parts = _decode(text, "account-timeline", account_id, 5)
    return Cursor(_bounded(parts[2], -_LIMIT), _bounded(parts[3], 0), _bounded(parts[4], 0))


def accounts_cursor(name: str, account_id: str) -> str:
    """The public cursor after the account (name, account_id) of the directory."""
    return _encode(["accounts", "", name, account_id])


def read_accounts_cursor(text: str) -> tuple[str, str]:
    parts = _decode(text, "accounts", "", 4)
    if not all(isinstance(p, str) and len(p) <= 500 for p in parts[2:]):
        raise CursorError("cursor is not one this API returned for this directory")
    return parts[2], parts[3]


def analytics_cursor(figure: str, filters_key: str, position: int) -> str:
    """The public cursor after log ``position`` of an analytics drill-down (``figure`` and
    a digest of its window and filters, so it pages only what it was issued for)."""
    return _encode([f"analytics:{figure}", filters_key, position])


def read_analytics_cursor(text: str, figure: str, filters_key: str) -> int:
    parts = _decode(text, f"analytics:{figure}", filters_key, 3)
    return _bounded(parts[2], 0)
