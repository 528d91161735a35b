"""Content-addressed blob store shared by the channels: raw messages, attachments, faxes.

Blobs live under ``<data>/blobs/ab/cd/<sha256>``; events carry only the hash,
size, type and name. Writes are atomic (temp file + fsync + rename), so a blob
is either whole or absent, and writing the same bytes twice is a no-op.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from pathlib import Path


class BlobNotFoundError(KeyError):
    """Raised when no blob has the requested hash."""


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsynced: list[Path] = []

    def sync(self) -> None:
        """Make every blob written with ``sync=False`` durable: one ``syncfs`` of the
        store's file system where the platform has it, else an fsync per blob."""
        if not self._unsynced:
            return
        pending, self._unsynced = self._unsynced, []
        if _syncfs(self.root):
            return
        for path in pending:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, *, sync: bool = True) -> str:
        """Store ``data``; return its sha256 hex digest.

        ``sync=False`` skips the per-blob fsync: call ``sync()`` before recording
        anything that refers to the blob (batch writers: one flush per batch)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            if not sync:
                self._unsynced.append(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFoundError(sha256) from exc

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def delete(self, sha256: str) -> bool:
        """Remove a blob (erasure); True if it existed."""
        try:
            self._path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False


def _syncfs(root: Path) -> bool:
    """syncfs(2) on the file system holding ``root`` (Linux); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(root, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)
