"""RFC 9162 Merkle trees: roots, inclusion and consistency proofs, and an append-only frontier.

Pure functions over leaf hashes (32-byte SHA-256 digests of ``0x00 ‖ data``).
Hashing and proof *verification* are defined once, in ``standalone_verify``
(the file an auditor runs on its own) and re-exported here, so the code that
builds a proof and the code that checks it can never drift apart.

``Frontier`` keeps the roots of the perfect subtrees of an append-only tree
(at most log2(n) hashes): appending costs one leaf hash plus amortised one
node hash, and the root of any size it has seen can be recomputed from it —
which is how a seal is made, and how verification resumes from a seal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from replays.audit.standalone_verify import (
    EMPTY_ROOT,
    HASH_SIZE,
    VerificationError,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT", "HASH_SIZE", "Frontier", "SubtreeRoot", "VerificationError",
    "consistency_path", "consistency_proof", "inclusion_path", "inclusion_proof", "leaf_hash",
    "node_hash", "perfect_subtrees", "root", "root_from_inclusion", "verify_consistency",
    "verify_inclusion",
]

#: ``(lo, hi) -> `` the tree hash of leaves ``lo..hi-1`` (an RFC 9162 subtree)
SubtreeRoot = Callable[[int, int], bytes]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree hash of ``leaves`` (leaf hashes), level by level.

    Pairing neighbours and promoting an odd last node unchanged builds the same
    tree as RFC 9162's recursive split, without recursion.
    """
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees that make up leaves ``lo..hi-1``, left to right, as (height,
    index at that height). ``lo`` must be a multiple of the first one's size, as it is for
    every subtree of RFC 9162's split; their roots folded from the right give the root."""
    out = []
    while lo < hi:
        height = (hi - lo).bit_length() - 1
        out.append((height, lo >> height))
        lo += 1 << height
    return out


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162 §2.1.3.1)."""
    size = len(leaves) if size is None else size
    if not size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    return inclusion_path(lambda lo, hi: root(leaves[lo:hi]), index, size)


def inclusion_path(subtree: SubtreeRoot, index: int, size: int) -> list[bytes]:
    """``inclusion_proof`` over any source of subtree roots (e.g. hashes kept in a store):
    one subtree root per level, so O(log n) of them."""
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:  # walk down from the root, collecting the sibling subtrees
        k = _split(hi - lo)
        if index - lo < k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
    proof.reverse()  # the path runs from the leaf up
    return proof


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int | None = None) -> list[bytes]:
    """The proof that the tree of ``size2`` leaves extends the one of ``size1`` (RFC 9162 §2.1.4.1)."""
    size2 = len(leaves) if size2 is None else size2
    if not size2 <= len(leaves):
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    return consistency_path(lambda lo, hi: root(leaves[lo:hi]), size1, size2)


def consistency_path(subtree: SubtreeRoot, size1: int, size2: int) -> list[bytes]:
    """``consistency_proof`` over any source of subtree roots (O(log n) of them)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


class Frontier:
    """The right edge of an append-only tree: the roots of its perfect subtrees.

    ``nodes[i]`` is the root of a perfect subtree of ``2**heights[i]`` leaves,
    left to right with strictly decreasing heights (the bits of ``size``).
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != size.bit_count() or any(len(n) != HASH_SIZE for n in nodes):
            raise ValueError(f"a frontier of size {size} needs {size.bit_count()} 32-byte nodes")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes, completed: list[tuple[int, int, bytes]] | None = None,
               stride: int = 8) -> None:
        """Add a leaf; with ``completed``, also collect (height, index, hash) of each perfect
        subtree it completes whose height is a multiple of ``stride`` (what a seal keeps)."""
        node = leaf
        size = self.size
        height = 0
        while size & 1:  # each trailing 1 bit is a perfect subtree the new one completes
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
            height += 1
            if completed is not None and height % stride == 0:
                completed.append((height, size, node))
        self.nodes.append(node)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            acc = node_hash(node, acc)
        return acc

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)

    def to_bytes(self) -> bytes:
        return b"".join(self.nodes)

    @classmethod
    def from_bytes(cls, size: int, raw: bytes) -> Frontier:
        return cls(size, [raw[i:i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE)])
