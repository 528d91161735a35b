"""Content-addressed blob store shared by the channels: raw messages, attachments, faxes.

Blobs live under ``<data>/blobs/ab/cd/<address>``; events carry only the
address, size, type and name. Writes are atomic (temp file + fsync + rename),
so a blob is either whole or absent, and writing the same bytes twice is a
no-op.

With a :class:`BlobSealer` (the app always has one: ``touchstream.privacy``)
the address is a keyed digest of the bytes, not their SHA-256, so nobody can
confirm "is this document stored here?" by hashing a candidate, and the file
holds the bytes encrypted under the blob's own key, which an erasure destroys.
Without one (tests of the store itself) the address is the plain SHA-256 and
the file holds the bytes as given.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import os
import re
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

_ADDRESS = re.compile(r"[0-9a-f]{64}")
WRITERS = 4  # threads writing one batch's blob files


class BlobNotFoundError(KeyError):
    """Raised when no blob has the requested address."""


class BlobUnreadableError(Exception):
    """Raised when a stored blob does not open: its key was destroyed by an erasure,
    or its bytes were changed or truncated."""


class BlobSealer(Protocol):
    """How blobs are addressed and kept: a keyed address, and bytes sealed at rest."""

    def address(self, data: bytes, owner: str | None = None) -> str:
        """Where ``data`` is stored: 64 lower-case hex characters that reveal nothing
        of the bytes to someone without the installation's secret. Two owners' copies
        of the same bytes have two addresses (and two keys)."""

    def prepare(self, addresses: Sequence[str]) -> None:
        """Get ready to ``seal`` blobs at these addresses (their keys made in one go)."""

    def seal(self, address: str, data: bytes) -> bytes:
        """The bytes to write for ``data`` stored at ``address``."""

    def open(self, address: str, stored: bytes) -> bytes:
        """The bytes given to ``seal``; ``BlobUnreadableError`` if they cannot be had."""


class BlobStore:
    def __init__(self, root: Path, sealer: BlobSealer | None = None) -> None:
        self.root = root
        self._root = str(root)
        self.sealer = sealer
        self._unsynced: list[str] = []
        self._tmp_names = itertools.count()
        self._tmp_prefix = f".tmp-{secrets.token_hex(6)}-"  # another store, process or host

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

    def _path(self, address: str) -> Path:
        return Path(self._file(address))

    def _file(self, address: str) -> str:
        """Where a blob lives, as a string: pathlib's joins were ~8% of writing a batch's
        blobs and of checking which exist (py-spy, email ingest)."""
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a blob address (64 hex digits): {address!r}")
        return f"{self._root}/{address[:2]}/{address[2:4]}/{address}"

    def address_of(self, data: bytes, owner: str | None = None) -> str:
        """The address ``put(data, owner=owner)`` stores ``data`` under (nothing is written)."""
        if self.sealer is None:
            return hashlib.sha256(data).hexdigest()
        return self.sealer.address(data, owner)

    def put(self, data: bytes, *, sync: bool = True, owner: str | None = None) -> str:
        """Store ``data``; return its address.

        ``owner`` names the person the bytes are about, as the caller knows them (a
        contact point such as ``email:ada@example.com``, a customer id): with a sealer,
        each owner's copy of the same bytes is a blob of its own, so erasing one person
        shreds only theirs. ``sync=False`` skips the per-blob fsync: call ``sync()``
        before recording anything that refers to the blob (batch writers: one flush
        per batch)."""
        digest = self.address_of(data, owner)
        path = self._file(digest)
        if os.path.exists(path):
            return digest
        self._write(path, digest, data, sync)
        return digest

    def batch(self) -> BlobBatch:
        """Blobs written together (see :class:`BlobBatch`)."""
        return BlobBatch(self)

    def _write(self, path: str, digest: str, data: bytes, sync: bool) -> None:
        self._write_file(path, self._sealed(digest, data), sync)

    def _sealed(self, digest: str, data: bytes) -> bytes:
        return data if self.sealer is None else self.sealer.seal(digest, data)

    def _write_file(self, path: str, stored: bytes, sync: bool) -> None:
        """Write the (sealed) bytes atomically: thread-safe, no Python state but a counter
        and the list of unsynced paths."""
        # os calls, not pathlib/tempfile: ~a third of writing a batch's blobs was their
        # Python overhead. The temp name is unique (process prefix + counter, O_EXCL).
        folder = os.path.dirname(path)
        try:
            os.mkdir(folder)
        except FileExistsError:
            pass
        except FileNotFoundError:  # its parent is new too (``ab/`` of ``ab/cd/``)
            parent = os.path.dirname(folder)
            try:
                os.mkdir(parent)
            except FileExistsError:
                pass
            except FileNotFoundError:  # the store's own root is new
                os.makedirs(parent, exist_ok=True)
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
        tmp = f"{folder}/{self._tmp_prefix}{os.getpid()}-{next(self._tmp_names)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                with memoryview(stored) as view:
                    written = 0
                    while written < len(view):
                        written += os.write(fd, view[written:])
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if not sync:
                self._unsynced.append(path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get(self, address: str) -> bytes:
        try:
            stored = self._path(address).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFoundError(address) from exc
        return stored if self.sealer is None else self.sealer.open(address, stored)

    def exists(self, address: str) -> bool:
        return os.path.exists(self._file(address))

    def delete(self, address: str) -> bool:
        """Remove a blob; True if it existed."""
        try:
            self._path(address).unlink()
            return True
        except FileNotFoundError:
            return False

    def shred(self, address: str) -> bool:
        """Overwrite a blob's bytes with zeros, then remove it (erasure); True if it
        existed. A reference that is not a blob address is a no-op."""
        try:
            path = self._path(address)
        except ValueError:
            return False
        try:
            fh = open(path, "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return False
        with fh:
            size = os.fstat(fh.fileno()).st_size
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink(missing_ok=True)
        return True


class BlobBatch:
    """Blobs of one batch: ``put`` gives the address at once, ``write`` stores them all.

    ``write`` asks the sealer for the keys of every new blob in one go (one durable
    commit, not one per blob), then writes the files and makes them durable together.
    Keys are committed before any file that needs them exists, and every file is
    durable before ``write`` returns: the caller records nothing that names a blob of
    the batch until then. Not shared between threads."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._queued: dict[str, bytes] = {}
        # (id of the bytes, owner) → (the bytes, their address): a message's raw bytes are
        # put twice for one owner (its own copy, its touchpoint's), and each put was a keyed
        # hash of all of them and a stat. The bytes are held, so their id stays theirs.
        self._addresses: dict[tuple[int, str | None], tuple[bytes, str]] = {}

    def put(self, data: bytes, owner: str | None = None) -> str:
        """The address ``data`` will have (as ``BlobStore.put``); written by ``write``."""
        known = self._addresses.get((id(data), owner))
        if known is not None and known[0] is data:
            return known[1]
        address = self.store.address_of(data, owner)
        self._addresses[id(data), owner] = (data, address)
        if address not in self._queued and not self.store.exists(address):
            self._queued[address] = data
        return address

    def write(self) -> None:
        """Store every blob put so far, durably.

        The files are written by a few threads: making a directory, creating, writing
        and renaming a file are system calls that release the GIL, and they were most
        of an email batch's blob writes (py-spy: ~30% of ingest wall time, one blob
        after another). Every write has finished, or failed and been reported, before
        the one ``sync`` that makes them all durable, and before ``write`` returns."""
        queued, self._queued = self._queued, {}
        if not queued:
            return
        store = self.store
        if store.sealer is not None:
            store.sealer.prepare(list(queued))
        # sealed here (the key store is not asked from other threads), written by the pool
        jobs = [(store._file(address), store._sealed(address, data))
                for address, data in queued.items()]
        if len(jobs) < 2 * WRITERS:
            for path, stored in jobs:
                store._write_file(path, stored, False)
        else:
            # a share of the files per thread, not a task per file: a future per file and
            # its wake-up cost the submitting thread ~7% of a PostgreSQL ingest (py-spy)
            with ThreadPoolExecutor(WRITERS, thread_name_prefix="blob-writer") as pool:
                done = [pool.submit(_write_files, store, jobs[i::WRITERS])
                        for i in range(WRITERS)]
            for future in done:  # every one has run (the pool's exit waited): raise the first error
                future.result()
        store.sync()


def _write_files(store: BlobStore, jobs: Sequence[tuple[str, bytes]]) -> None:
    """Write each file (not synced); then raise the first error, if any: one failed file
    does not stop the others."""
    failed: BaseException | None = None
    for path, stored in jobs:
        try:
            store._write_file(path, stored, False)
        except Exception as exc:  # noqa: BLE001 - raised below, after the other files
            failed = failed or exc
    if failed is not None:
        raise failed


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
