"""Proofs from stored hashes: the same proofs as from all the leaves, in O(log n) reads.

A log of a few thousand events (more than 2**8 per node, with ragged edges) is sealed
at several sizes; every proof built from the seal store (leaf cache + nodes table)
must equal the one built from the full list of leaves and verify with the standalone
verifier, also after the nodes table is lost (a seal made before it existed).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from projections.store import Db, ReadStore
from replays.audit import standalone_verify as sv
from replays.audit.keys import load_key
from replays.audit.log import stored_record
from replays.audit.merkle import consistency_proof, inclusion_proof, leaf_hash
from replays.audit.seals import Seal, SealStore, seal_log

SIZES = (1, 255, 256, 257, 1000, 3000, 4097)


@dataclass(frozen=True)
class Record:
    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


class ListLog:
    """A notification log over a list (positions 1, 3, 5, …: gaps, as on a real store)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, n: int) -> None:
        for _ in range(n):
            k = len(self.records)
            self.records.append(Record(2 * k + 1, f"stream-{k % 17}", k // 17, "t/1",
                                       hashlib.sha256(str(k).encode()).digest() * 2))

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *,
                             inclusive_of_start: bool = True) -> Sequence[Any]:
        low = 0 if start is None else start
        out = [r for r in self.records if (r.id >= low if inclusive_of_start else r.id > low)
               and (stop is None or r.id <= stop)]
        return out[:limit]

    def max_notification_id(self) -> int | None:
        return self.records[-1].id if self.records else None


@dataclass
class Sealed:
    db: Db
    store: SealStore
    log: ListLog
    seals: list[Seal]
    public_key: Any

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(stored_record(r)) for r in self.log.records]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    folder: Path = tmp_path_factory.mktemp("stored-proofs")
    db = ReadStore(f"sqlite:///{folder / 'read.db'}").connect()
    store = SealStore(db)
    store.ensure_schema()
    key = load_key(folder, create=True)
    log = ListLog()
    seals = []
    for size in SIZES:
        log.add(size - len(log.records))
        seals.append(seal_log(store, log, key))
    try:
        yield Sealed(db, store, log, seals, key.public_key)
    finally:
        db.close()


def _indexes(size: int, rnd: random.Random) -> set[int]:
    return {0, size - 1, size // 2, *(rnd.randrange(size) for _ in range(20))}


def _check_all(s: Sealed) -> None:
    rnd = random.Random(3)
    leaves = s.leaves
    tree = s.store.tree()
    for seal in s.seals:
        root = bytes.fromhex(seal.root)
        for index in _indexes(seal.tree_size, rnd):
            proof = tree.inclusion(index, seal.tree_size)
            assert proof == inclusion_proof(leaves, index, seal.tree_size)
            sv.verify_inclusion(index, seal.tree_size, leaves[index], proof, root)
        for first in s.seals:
            if first.tree_size <= seal.tree_size:
                proof = tree.consistency(first.tree_size, seal.tree_size)
                assert proof == consistency_proof(leaves, first.tree_size, seal.tree_size)
                sv.verify_consistency(first.tree_size, seal.tree_size,
                                      bytes.fromhex(first.root), root, proof)


def test_seals_keep_one_node_per_2_to_the_8_leaves(sealed: Sealed) -> None:
    count = sealed.db.scalar(f"SELECT COUNT(*) FROM {sealed.store.nodes_table}")
    assert count == SIZES[-1] // 256  # 16 of height 8, none of 16 yet


def test_proofs_from_stored_hashes_equal_proofs_from_all_leaves_and_verify(
        sealed: Sealed) -> None:
    _check_all(sealed)


def test_the_leaf_of_a_position_is_found_by_binary_search(sealed: Sealed) -> None:
    size = sealed.seals[-1].tree_size
    for index in (0, 1, 256, 3999, size - 1):
        assert sealed.store.leaf_index(sealed.log.records[index].id, size) == index
    assert sealed.store.leaf_index(2, size) is None  # between two positions
    assert sealed.store.leaf_index(sealed.log.records[-1].id, size - 1) is None  # not sealed


def test_a_proof_reads_a_few_blocks_not_the_leaf_cache(sealed: Sealed) -> None:
    tree = sealed.store.tree()
    size = sealed.seals[-1].tree_size
    tree.inclusion(size // 3, size)
    info = tree._range.cache_info()
    assert info.currsize <= 6  # a handful of 256-hash blocks, of 16 leaf blocks and more


def test_stored_proofs_still_hold_when_the_nodes_are_missing(sealed: Sealed) -> None:
    with sealed.db.write():
        sealed.db.execute(f"DELETE FROM {sealed.store.nodes_table} WHERE node_index % 3 = 1")
    _check_all(sealed)
