import hashlib
from pathlib import Path

import pytest

from channels.blobs import WRITERS, BlobNotFoundError, BlobStore


def test_blobs_are_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"%PDF-1.4 fax page"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put(data) == digest
    assert store.get(digest) == data
    assert store.delete(digest) and not store.exists(digest)
    with pytest.raises(BlobNotFoundError):
        store.get(digest)


def test_bad_hashes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).get("../../etc/passwd")


def test_blobs_written_without_sync_are_whole_after_one_sync(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digests = [store.put(bytes([i]) * 1000, sync=False) for i in range(5)]
    store.sync()
    assert [store.get(d) for d in digests] == [bytes([i]) * 1000 for i in range(5)]
    assert not list(tmp_path.rglob(".tmp-*"))
    store.sync()  # nothing pending: a no-op


def test_a_batch_big_enough_for_the_writer_threads_is_whole_and_durable(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    batch = store.batch()
    docs = [bytes([i]) * (1000 + i) for i in range(3 * WRITERS)]
    addresses = [batch.put(d) for d in docs]
    batch.write()
    assert [store.get(a) for a in addresses] == docs
    assert not store._unsynced  # all made durable before write returned
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_failed_file_of_a_threaded_batch_is_raised_after_the_others_are_written(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path)
    batch = store.batch()
    docs = [f"document {i}".encode() for i in range(3 * WRITERS)]
    addresses = [batch.put(d) for d in docs]
    blocked = addresses[5]
    (tmp_path / blocked[:2]).write_bytes(b"a file where its folder should be")
    with pytest.raises(NotADirectoryError):
        batch.write()
    others = [(a, d) for a, d in zip(addresses, docs, strict=True) if a[:2] != blocked[:2]]
    assert others and all(store.get(a) == d for a, d in others)
    assert not list(tmp_path.rglob(".tmp-*"))
