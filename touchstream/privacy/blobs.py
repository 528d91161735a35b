"""Blobs sealed at rest: a keyed address and a data key of their own, destroyed on erasure.

The owner of a blob is often unknown when it is written (the IMAP follower
stores a raw message before the sender is resolved to a customer), so a blob
does not use its owner's key: each blob has its own data key, kept in the
same key table as the customers' under the subject ``blob:<address>``.
Erasing a person destroys the key of every blob their events name, then
shreds the file; either step alone leaves the bytes unreadable.

* **Address**: HMAC-SHA-256 of ``generation || bytes`` under a key derived
  from the installation secret (``DataKeys.id_secret``), as 64 hex digits —
  the shape of the SHA-256 it replaces, so event fields and paths keep
  working. Without the secret nobody can tell whether a document is stored
  by hashing it. ``generation`` is 0 until the blob at that address is
  erased; the same bytes stored again later (a person writes again after an
  erasure) go to generation 1, and so on, never to a destroyed key.
* **Owners**: a writer that knows whose the bytes are (the email channel: the
  customer's address; the fax webhook: the sender's number) passes it as
  ``owner``; the address is then computed
  under a key derived for that owner, so the same attachment sent by two
  people is two blobs under two keys, and erasing one shreds only theirs.
  Bytes stored with no owner (a message that does not parse, a bounce report,
  an API upload) are shared by whoever names them.
* **Sealing**: AES-256-GCM under the blob's key with the address as
  authenticated data, so a file copied to another address does not open.
  Stored form: ``TSB1 || nonce || ciphertext``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.blobs import BlobUnreadableError
from touchstream.privacy.datakeys import (
    NONCE_BYTES,
    DataKeyMissingError,
    DataKeys,
    SubjectErasedError,
)

MAGIC = b"TSB1"
SUBJECT_PREFIX = "blob:"
# Far more than any real re-upload history of one document; a bound so a damaged
# key table cannot make ``address`` spin.
MAX_GENERATIONS = 10_000


class BlobAddressExhaustedError(RuntimeError):
    """Raised when every generation of a blob's address was erased (a damaged key table)."""


def blob_subject(address: str) -> str:
    """The key-table subject holding the data key of the blob at ``address``."""
    return SUBJECT_PREFIX + address


class SealedBlobs:
    """A ``channels.blobs.BlobSealer``: keyed addresses, one data key per blob."""

    def __init__(self, keys: DataKeys) -> None:
        self.keys = keys
        # A key of its own for addresses (not the id secret itself): an address can
        # never equal a stream id or a stored source-key digest.
        self._address_key = hmac.new(keys.id_secret, b"touchstream-blob-address",
                                     hashlib.sha256).digest()

    def address(self, data: bytes, owner: str | None = None) -> str:
        # An owner's copies are addressed under a key of that owner's: no structure in
        # the bytes can make one owner's address equal another's (or an unowned one).
        key = self._address_key if owner is None else hmac.new(
            self._address_key, b"owner|" + owner.encode(), hashlib.sha256).digest()
        for generation in range(MAX_GENERATIONS):
            mac = hmac.new(key, generation.to_bytes(4, "big"), hashlib.sha256)
            mac.update(data)
            address = mac.hexdigest()
            if not self.keys.is_erased(blob_subject(address)):
                return address
        raise BlobAddressExhaustedError(
            f"{MAX_GENERATIONS} generations of one blob's address are erased")

    def prepare(self, addresses: Sequence[str]) -> None:
        """Create the keys of blobs about to be sealed, in one transaction."""
        self.keys.prepare_for_write(blob_subject(a) for a in addresses)

    def seal(self, address: str, data: bytes) -> bytes:
        key = self.keys.key_for_write(blob_subject(address))
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, _aad(address))

    def open(self, address: str, stored: bytes) -> bytes:
        if not stored.startswith(MAGIC):
            raise BlobUnreadableError(f"blob {address} is not sealed (written without a key)")
        body = stored[len(MAGIC):]
        try:
            key = self.keys.key_for_read(blob_subject(address))
        except SubjectErasedError as exc:
            raise BlobUnreadableError(f"blob {address} was erased") from exc
        except DataKeyMissingError as exc:
            raise BlobUnreadableError(f"blob {address} has no data key (a damaged key table)"
                                      ) from exc
        try:
            return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(address))
        except InvalidTag as exc:
            raise BlobUnreadableError(
                f"blob {address} failed authentication: its bytes were changed, truncated "
                "or copied from another address") from exc

    def destroy(self, address: str) -> bool:
        """Destroy the key of the blob at ``address`` (idempotent); True if destroyed now."""
        return self.keys.destroy(blob_subject(address))


def _aad(address: str) -> bytes:
    return b"touchstream-blob|" + address.encode()
