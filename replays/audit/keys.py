"""The seal signing key: Ed25519, one PEM file in the data folder, readable by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from replays.audit.standalone_verify import key_id

KEY_FILE = "audit-seal-key.pem"


class SealKeyError(Exception):
    """Raised when the seal key file is missing, unreadable, not Ed25519 or open to others."""


class SealKey:
    """Signs seals; knows its public key and key id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        self.key_id = key_id(self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    @classmethod
    def generate(cls) -> SealKey:
        return cls(Ed25519PrivateKey.generate())

    def private_pem(self) -> bytes:
        return self._private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def load_key(data_dir: Path, *, create: bool = False) -> SealKey:
    """The data folder's seal key; with ``create`` a new one is made (mode 0600) when absent."""
    path = key_path(data_dir)
    if not path.exists():
        if not create:
            raise SealKeyError(f"no seal key at {path}: run 'touchstream audit seal' first")
        return _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SealKeyError(f"the seal key {path} is readable by others (mode {mode:o}); "
                           "run chmod 600 on it")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SealKeyError(f"cannot read the seal key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SealKeyError(f"the seal key {path} is not an Ed25519 key")
    return SealKey(key)


def _create(path: Path) -> SealKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SealKey.generate()
    try:  # O_EXCL: two sealers starting at once never overwrite each other's key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key(path.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_pem())
        fh.flush()
        os.fsync(fh.fileno())
    return key
