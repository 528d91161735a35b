"""The write model's errors that are not domain rules (those live in ``domain.errors``)."""

from __future__ import annotations


class CommandError(Exception):
    """Base of the write model's errors that are not domain rules."""


class CustomerNotFoundError(CommandError):
    """Raised when a command names a customer that does not exist."""


class ConcurrencyError(CommandError):
    """Raised when optimistic concurrency retries are exhausted."""


class ConflictError(CommandError):
    """Raised when a command conflicts with what was already recorded."""


class HeldForTriageError(CommandError):
    """Raised internally when a touchpoint's sender is unknown and unknown senders are held."""

    def __init__(self, contact: str) -> None:
        super().__init__(f"unknown sender {contact}: held for triage")
        self.contact = contact
