"""What every command module shares: the store, the idempotency protocol, claims, settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from commands.contact_claims import ContactClaims
from commands.idempotency import Idempotency
from commands.naming import StreamNaming
from commands.ports import KeyShredder
from commands.store import CustomerStore


@dataclass(frozen=True)
class WriteContext:
    """The write model's parts, built once by ``Hub`` and handed to each command module."""

    naming: StreamNaming
    keys: Idempotency
    store: CustomerStore
    claims: ContactClaims
    default_region: str | None
    unknown_contacts: str  # "create" a prospect for an unknown sender, or "hold" for triage
    clock: Callable[[], datetime]
    max_future_skew: timedelta  # a touchpoint dated further ahead than this is refused
    # Destroys the key sealing a held touchpoint once it is assigned (None: nothing is
    # sealed, as with the library's own mapper).
    shredder: KeyShredder | None = None
    # Business areas' rules from the settings, by area (``"sales"``: the pipeline); an
    # area uses its built-in default when absent.
    policies: Mapping[str, Any] = field(default_factory=dict)
