"""Blobs sealed at rest: keyed addresses, a key per blob, erasure by key and by shredding."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from channels.blobs import BlobNotFoundError, BlobStore, BlobUnreadableError
from touchstream.privacy.blobs import SealedBlobs, blob_subject
from touchstream.privacy.datakeys import DataKeys, SQLiteKeyTable

DOC = b"%PDF-1.4 Order form of Ada Lovelace, 12 Canary Wharf\n%%EOF\n"


def keys(path: Path, master: bytes = b"m" * 32) -> DataKeys:
    return DataKeys(SQLiteKeyTable(path), master)


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", SealedBlobs(keys(tmp_path / "keys.db")))


def only_file(root: Path) -> Path:
    (path,) = [p for p in root.rglob("*") if p.is_file()]
    return path


def test_the_address_is_a_keyed_digest_not_the_sha256_of_the_bytes(
        store: BlobStore, tmp_path: Path) -> None:
    address = store.put(DOC)
    assert len(address) == 64 and set(address) <= set("0123456789abcdef")
    assert address != hashlib.sha256(DOC).hexdigest()
    assert store.put(DOC) == address == store.address_of(DOC)  # deterministic: deduplicated
    # Another installation (another secret) gives the same bytes another address.
    other = BlobStore(tmp_path / "other", SealedBlobs(keys(tmp_path / "other.db")))
    assert other.put(DOC) != address


def test_the_file_holds_ciphertext_and_reads_back_as_the_bytes(store: BlobStore) -> None:
    address = store.put(DOC)
    stored = only_file(store.root).read_bytes()
    assert b"Ada" not in stored and b"PDF" not in stored and DOC not in stored
    assert store.get(address) == DOC


def test_writing_the_same_bytes_again_leaves_the_sealed_file_as_it_was(store: BlobStore) -> None:
    address = store.put(DOC)
    before = only_file(store.root).read_bytes()
    store.put(DOC, sync=False)
    store.sync()
    assert only_file(store.root).read_bytes() == before and store.get(address) == DOC


def test_a_flipped_byte_or_a_file_copied_to_another_address_does_not_open(
        store: BlobStore) -> None:
    a, b = store.put(DOC), store.put(b"another document")
    path_a, path_b = store._path(a), store._path(b)
    path_b.write_bytes(path_a.read_bytes())  # a's sealed bytes under b's address
    with pytest.raises(BlobUnreadableError, match="failed authentication"):
        store.get(b)
    flipped = bytearray(path_a.read_bytes())
    flipped[-1] ^= 1
    path_a.write_bytes(bytes(flipped))
    with pytest.raises(BlobUnreadableError, match="failed authentication"):
        store.get(a)


def test_a_blob_written_without_a_sealer_is_refused_by_a_sealed_store(
        store: BlobStore, tmp_path: Path) -> None:
    plain = BlobStore(store.root)
    address = plain.put(DOC)
    with pytest.raises(BlobUnreadableError, match="not sealed"):
        store.get(address)


def test_a_destroyed_key_makes_the_blob_unreadable_and_the_same_bytes_get_a_new_address(
        tmp_path: Path) -> None:
    data_keys = keys(tmp_path / "keys.db")
    sealer = SealedBlobs(data_keys)
    store = BlobStore(tmp_path / "blobs", sealer)
    first = store.put(DOC)
    assert sealer.destroy(first) and not sealer.destroy(first)
    assert data_keys.is_erased(blob_subject(first))
    with pytest.raises(BlobUnreadableError, match="erased"):
        store.get(first)
    # A person writes again after an erasure: stored afresh, never under the dead key.
    store.shred(first)
    again = store.put(DOC)
    assert again != first and store.get(again) == DOC
    assert store.put(DOC) == again


def test_shredding_overwrites_the_bytes_before_removing_the_file(store: BlobStore,
                                                                 tmp_path: Path) -> None:
    address = store.put(DOC)
    witness = tmp_path / "witness"
    os.link(store._path(address), witness)  # sees the inode after the unlink
    size = witness.stat().st_size
    assert store.shred(address)
    assert not store.exists(address) and witness.read_bytes() == b"\0" * size
    with pytest.raises(BlobNotFoundError):
        store.get(address)
    assert not store.shred(address)  # gone already
    assert not store.shred("rec-CA1234")  # a provider's recording id, not a blob


def test_keys_of_blobs_survive_a_master_key_rotation(tmp_path: Path) -> None:
    data_keys = keys(tmp_path / "keys.db")
    store = BlobStore(tmp_path / "blobs", SealedBlobs(data_keys))
    address = store.put(DOC)
    data_keys.rotate_master(b"n" * 32)
    fresh = BlobStore(tmp_path / "blobs", SealedBlobs(keys(tmp_path / "keys.db", b"n" * 32)))
    assert fresh.get(address) == DOC and fresh.address_of(DOC) == address


def test_the_apps_blob_store_is_sealed_under_the_write_models_data_keys(tmp_path: Path) -> None:
    from tests.conftest import store_env
    from touchstream import settings as settings_mod
    from touchstream.bootstrap import Dependencies

    deps = Dependencies(settings_mod.load(store_env("sqlite", tmp_path / "data")))
    try:
        sealer = deps.blobs.sealer
        assert isinstance(sealer, SealedBlobs)
        assert sealer.keys is deps.data_keys is deps.hub.mapper.keys  # type: ignore[attr-defined]
        assert deps.eraser.blobs is deps.blobs and deps.eraser.keys is deps.data_keys
        address = deps.blobs.put(DOC)
        assert address != hashlib.sha256(DOC).hexdigest() and deps.blobs.get(address) == DOC
    finally:
        deps.close()


def test_the_same_bytes_of_two_owners_are_two_blobs_and_erasing_one_leaves_the_other(
        store: BlobStore) -> None:
    sealer = store.sealer
    assert isinstance(sealer, SealedBlobs)
    ada = store.put(DOC, owner="email:ada@example.com")
    bob = store.put(DOC, owner="email:bob@example.org")
    unowned = store.put(DOC)
    assert len({ada, bob, unowned}) == 3  # three files, three keys
    assert store.put(DOC, owner="email:ada@example.com") == ada  # still deduplicated per owner
    assert sealer.destroy(ada) and store.shred(ada)
    with pytest.raises((BlobNotFoundError, BlobUnreadableError)):
        store.get(ada)
    assert store.get(bob) == DOC == store.get(unowned)
    assert sealer.keys.is_erased(blob_subject(ada))
    assert not sealer.keys.is_erased(blob_subject(bob))


class CountingKeyTable(SQLiteKeyTable):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.commits = 0

    def insert(self, subject: str, wrapped: bytes, now: float) -> None:
        self.commits += 1
        super().insert(subject, wrapped, now)

    def insert_many(self, rows: Sequence[tuple[str, bytes]], now: float) -> None:
        self.commits += 1
        super().insert_many(rows, now)


def test_a_batch_makes_the_keys_of_its_new_blobs_in_one_commit_before_any_file(
        tmp_path: Path) -> None:
    table = CountingKeyTable(tmp_path / "keys.db")
    store = BlobStore(tmp_path / "blobs", SealedBlobs(DataKeys(table, b"m" * 32)))
    known = store.put(b"stored before")  # has its key and file already
    table.commits = 0
    batch = store.batch()
    docs = [(DOC, "email:ada@example.com"), (DOC, "email:bob@example.com"),
            (b"other bytes", None), (DOC, "email:ada@example.com"), (b"stored before", None)]
    addresses = [batch.put(data, owner) for data, owner in docs]
    assert addresses[0] == addresses[3] and addresses[4] == known
    assert len(set(addresses)) == 4
    assert not any(store.exists(a) for a in addresses[:3])  # nothing written yet
    batch.write()
    assert table.commits == 1  # three new keys, one transaction
    assert [store.get(a) for a in addresses] == [data for data, _ in docs]
    batch.write()  # nothing queued: nothing to do
    assert table.commits == 1
