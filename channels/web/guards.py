"""Abuse guards for public forms: signed render tokens and a per-client rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class TokenError(ValueError):
    """Raised when a form token is missing, forged, for another form, too fresh or too old."""


@dataclass(frozen=True)
class FormToken:
    form: str
    rendered_at: int
    nonce: str


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue_token(secret: str, form: str, now: float) -> str:
    """A one-time token for one rendering: form, render time and a random nonce, signed."""
    payload = f"{form}.{int(now)}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_mac(secret, payload)}"


def check_token(secret: str, token: str | None, form: str, now: float, *,
                min_age_s: float, max_age_s: float) -> FormToken:
    if not token:
        raise TokenError("the form token is missing; reload the form")
    payload, _, mac = token.rpartition(".")
    if not payload or not hmac.compare_digest(_mac(secret, payload).encode(), mac.encode()):
        raise TokenError("the form token is not valid; reload the form")
    parts = payload.split(".")
    if len(parts) != 3 or parts[0] != form:
        raise TokenError("the form token belongs to another form")
    try:
        rendered_at = int(parts[1])
    except ValueError as exc:
        raise TokenError("the form token is not valid; reload the form") from exc
    age = now - rendered_at
    if age < min_age_s:
        raise TokenError("that was quicker than a person can fill in this form; "
                         "please check your entries and send it again")
    if age > max_age_s:
        raise TokenError("the form has expired; please send it again")
    return FormToken(form=form, rendered_at=rendered_at, nonce=parts[2])


class RateLimit(Protocol):
    """At most a number of hits per window per client key (the forms' abuse guard)."""

    def hit(self, key: str) -> float | None:
        """Count a hit; None if allowed, else seconds until the next one is."""


class RateLimiter:
    """At most ``limit`` hits per ``window_s`` per key (sliding window, in memory, per process;
    the served app counts in its state store instead: ``touchstream.fleet.rate_limits``)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count a hit; None if allowed, else seconds until the next one is."""
        now = self.clock()
        with self._lock:
            if len(self._hits) > 10_000:
                self._forget(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window_s - now)
            hits.append(now)
            return None

    def _forget(self, now: float) -> None:
        stale = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]
        for key in stale:
            del self._hits[key]
