"""Stream naming: which aggregate id each kind of stream gets on each store.

Ids derive from the business key, so every process names one customer,
contact point, mailbox or source key alike. With a secret (derived from the
master key, shared by every process of one installation) they are keyed
HMAC-SHA-256 digests instead of UUIDv5: an id derived from an email address,
a number or a Message-ID then cannot be confirmed by trying candidates, and
``digest`` gives the stored form of such a key (source-key rows, claims).
"""

from __future__ import annotations

import hashlib
from uuid import UUID, SafeUUID, uuid5

NAMESPACE = UUID("5d1f0c8e-8e53-4d55-a1f6-0f3c2b7e9a10")
# ``UUID(bytes=…, version=5)``'s bits: the RFC 4122 variant and the version number.
_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (5 << 76)


def event_id(key: str, seq: int = 0) -> UUID:
    """The id of the ``seq``-th event recorded under a source key (the same in every process)."""
    return uuid5(NAMESPACE, f"{key}#{seq}")


class _HmacSha256:
    """HMAC-SHA-256 under one key, with the key's padded inner and outer hash states
    computed once (RFC 2104; what ``hmac.new`` recomputes on every call): the same bytes
    as ``hmac.new(key, text.encode(), hashlib.sha256).digest()`` in about half the time.
    Two run per event of a bulk import (the event id, the stored source key)."""

    BLOCK = 64  # SHA-256's block size in bytes

    def __init__(self, key: bytes) -> None:
        if len(key) > self.BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self.BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def mac(self, text: str) -> bytes:
        inner = self._inner.copy()
        inner.update(text.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class StreamNaming:
    """Aggregate ids per store: ``customer-<uuid>`` streams on EventStoreDB, UUIDs on SQL."""

    DIGEST_MEMO = 20_000

    def __init__(self, prefixed: bool, secret: bytes | None = None) -> None:
        self.prefixed = prefixed
        self._secret = secret
        # A key is digested when it is looked up and again when its row is written
        # (bulk import, group commit): the last few thousand are kept (dropped whole).
        self._digests: dict[str, str] = {}
        self._mac = _HmacSha256(secret).mac if secret is not None else None  # type: ignore[assignment]

    def uuid_for(self, text: str) -> UUID:
        """A stable id for ``text``: keyed when there is a secret, UUIDv5 otherwise."""
        if self._secret is None:
            return uuid5(NAMESPACE, text)
        # ``UUID(bytes=mac[:16], version=5)`` without its argument checks (a 16-byte
        # value always fits), which took four times the HMAC itself.
        value = object.__new__(UUID)
        object.__setattr__(value, "int", int.from_bytes(self._mac(text)[:16]) & _KEEP | _SET)
        object.__setattr__(value, "is_safe", SafeUUID.unknown)
        return value

    def digest(self, text: str) -> str:
        """What is stored for a key derived from personal data (the text itself without a
        secret, so unkeyed test stores stay readable)."""
        if self._secret is None:
            return text
        digest = self._digests.get(text)
        if digest is None:
            if len(self._digests) >= self.DIGEST_MEMO:
                self._digests = {}
            digest = "h:" + self._mac(text).hex()
            self._digests[text] = digest
        return digest

    def event_id(self, key: str, seq: int = 0) -> UUID:
        """The id of the ``seq``-th event recorded under a source key."""
        return self.uuid_for(f"{key}#{seq}")

    def _id(self, prefix: str, value: UUID) -> UUID | str:
        return f"{prefix}-{value}" if self.prefixed else value

    def _keyed(self, prefix: str, key: str) -> UUID | str:
        # The prefix is hashed in too: on the SQL stores ids are bare UUIDs and
        # a contact claim and a reservation must never share one.
        return self._id(prefix, self.uuid_for(f"{prefix}:{key}"))

    def customer(self, customer_id: UUID) -> UUID | str:
        return self._id("customer", customer_id)

    def record(self, kind: str, record_id: UUID) -> UUID | str:
        """The stream of a non-customer aggregate (``account-<uuid>`` on EventStoreDB)."""
        return self._id(kind, record_id)

    def claim(self, key: str) -> UUID | str:
        return self._keyed("contact", key)

    def mailbox(self, account: str, folder: str) -> UUID | str:
        return self._id("mailbox", uuid5(NAMESPACE, f"mailbox:{account}|{folder}"))

    def reservation(self, source_key: str) -> UUID | str:
        return self._keyed("sourcekey", source_key)

    def held(self, source_key: str) -> UUID | str:
        return self._keyed("triage", source_key)

    @staticmethod
    def customer_uuid(aggregate_id: UUID | str) -> UUID:
        if isinstance(aggregate_id, UUID):
            return aggregate_id
        return UUID(str(aggregate_id).removeprefix("customer-"))

    def prospect(self, contact: str) -> UUID:
        """The prospect owning an unknown contact point: concurrent first contacts converge."""
        return self.uuid_for(f"prospect:{contact}")
