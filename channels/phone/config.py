"""What the phone and fax adapters need from configuration (built by the composition root)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TwilioConfig:
    auth_token: str
    public_base_url: str
    max_body_bytes: int = 64 * 1024


@dataclass(frozen=True)
class CtiConfig:
    secret: str
    window_s: float = 300.0
    max_body_bytes: int = 64 * 1024
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class FaxConfig:
    secret: str
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    max_document_bytes: int = 20 * 1024 * 1024
    allow_private_addresses: bool = False
    require_https: bool = True
    fetch_timeout_s: float = 20.0
    window_s: float = 300.0
    max_body_bytes: int = 64 * 1024
    clock: Callable[[], float] = time.time
