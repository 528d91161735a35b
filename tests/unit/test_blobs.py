import hashlib
from pathlib import Path

import pytest

from channels.blobs import BlobNotFoundError, BlobStore


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
