"""Invariant checkers shared by every test: nothing lost, nothing doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any


def assert_no_duplicate_source_keys(events: Iterable[Any]) -> None:
    """ND: at most one logical event per source key (multi-event commands share a key
    but never an event id)."""
    ids = Counter(str(e.event_id) for e in events if hasattr(e, "event_id"))
    doubled = [i for i, n in ids.items() if n > 1]
    assert not doubled, f"event ids recorded more than once: {doubled[:5]}"


def assert_nothing_lost(expected_keys: Iterable[str], events: Iterable[Any]) -> None:
    """NL: every source item ended up recorded."""
    seen = {e.source_key for e in events if hasattr(e, "source_key")}
    missing = set(expected_keys) - seen
    assert not missing, f"source keys never recorded: {sorted(missing)[:5]}"
