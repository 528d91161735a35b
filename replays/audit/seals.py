"""Seals, kept in the read store: signed (tree size, root, time) statements about the event log.

Tables (SQLite and PostgreSQL alike):

- ``audit_seals`` (``<prefix>_seals``; the read audit's are ``audit_access_seals``, on
  SQLite in the access-log file, ``audit.db``): one row per seal, the signed fields
  (``standalone_verify.seal_message``)
  plus the frontier at that size (not signed: checked against the signed root before use).
- ``audit_leaves``: the leaf hash and log position of every sealed event, by leaf index.
  A cache, never trusted on its own: it is what makes proofs cheap and lets a failed
  verification name the position that changed; ``verify`` checks it against the signed roots.
- ``audit_nodes``: the roots of the perfect subtrees of 2**8, 2**16, 2**24, … leaves,
  written as a seal completes them (≈0.4% of the leaves). Any subtree root then costs one
  range read of at most 256 hashes per 8 levels, so a proof of a leaf among n costs
  O(log n) small reads, not the whole leaf cache. Not trusted either: a wrong node makes
  a proof that fails to verify, never one that passes (a missing one is recomputed).

Sealing reads only the events after the last seal (the frontier carries the rest), so
a seal costs the new events, and runs in one read-store transaction under a lock, so two
sealers never write the same seal number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from projections.store import Db
from replays.audit.keys import SealKey
from replays.audit.log import NotificationLog, leaves
from replays.audit.merkle import (
    Frontier,
    consistency_path,
    inclusion_path,
    node_hash,
    perfect_subtrees,
    root,
)
from replays.audit.standalone_verify import seal_digest, seal_message

_LOCK_ID = 0x5EA1_A0D1
#: subtree heights kept in the nodes table: multiples of this
STRIDE = 8


class SealError(Exception):
    """Raised when a seal, a proof or a leaf asked for does not exist."""


@dataclass(frozen=True)
class Seal:
    """One seal; ``to_json`` is the form the standalone verifier reads."""

    seal: int
    tree_size: int
    root: str
    sealed_at: str
    last_position: int
    previous: str
    key_id: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = "seal, tree_size, root, sealed_at, last_position, previous, key_id, signature"


class SealStore:
    """The seals and the leaf cache on one read-store connection."""

    def __init__(self, db: Db, prefix: str = "audit") -> None:
        self.db = db
        self.seals_table = f"{prefix}_seals"
        self.leaves_table = f"{prefix}_leaves"
        self.verified_table = f"{prefix}_verified"
        self.nodes_table = f"{prefix}_nodes"

    def ensure_schema(self) -> None:
        blob = "BLOB" if self.db.dialect == "sqlite" else "BYTEA"
        with self.db.write():
            if self.db.dialect == "postgres":  # concurrent CREATE … IF NOT EXISTS can fail
                self.db.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.seals_table} (seal BIGINT PRIMARY KEY, "
                "tree_size BIGINT NOT NULL, root TEXT NOT NULL, sealed_at TEXT NOT NULL, "
                "last_position BIGINT NOT NULL, previous TEXT NOT NULL, key_id TEXT NOT NULL, "
                f"signature TEXT NOT NULL, frontier {blob} NOT NULL)")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.leaves_table} (leaf_index BIGINT PRIMARY KEY, "
                f"position BIGINT NOT NULL, leaf_hash {blob} NOT NULL)")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.nodes_table} (height INTEGER NOT NULL, "
                f"node_index BIGINT NOT NULL, hash {blob} NOT NULL, "
                "PRIMARY KEY (height, node_index))")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.verified_table} (id INTEGER PRIMARY KEY, "
                "seal BIGINT NOT NULL, verified_at TEXT NOT NULL)")

    # --- seals ---------------------------------------------------------------------

    def seals(self, from_seal: int = 1) -> list[Seal]:
        rows = self.db.all(f"SELECT {_COLUMNS} FROM {self.seals_table} WHERE seal >= ? "
                           "ORDER BY seal", (from_seal,))
        return [Seal(*row) for row in rows]

    def get(self, number: int) -> Seal:
        row = self.db.one(f"SELECT {_COLUMNS} FROM {self.seals_table} WHERE seal = ?", (number,))
        if row is None:
            raise SealError(f"no seal {number}")
        return Seal(*row)

    def latest(self) -> Seal | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM {self.seals_table} ORDER BY seal DESC LIMIT 1")
        return None if row is None else Seal(*row)

    def frontier(self, number: int) -> Frontier:
        row = self.db.one(f"SELECT tree_size, frontier FROM {self.seals_table} WHERE seal = ?",
                          (number,))
        if row is None:
            raise SealError(f"no seal {number}")
        return Frontier.from_bytes(int(row[0]), bytes(row[1]))

    # --- the leaf cache ------------------------------------------------------------

    def cached_leaves(self, start: int, batch: int = 5000) -> Iterator[list[tuple[int, bytes]]]:
        """(position, leaf hash) batches from leaf index ``start`` on."""
        while True:
            rows = self.db.all(f"SELECT leaf_index, position, leaf_hash FROM {self.leaves_table} "
                               "WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
                               (start, batch))
            if not rows:
                return
            yield [(int(r[1]), bytes(r[2])) for r in rows]
            start = int(rows[-1][0]) + 1

    def leaf_index(self, position: int, size: int) -> int | None:
        """The leaf index of the event at log ``position`` among the first ``size`` leaves.

        Positions grow with the leaf index, so a binary search over the primary key
        finds it in O(log n) point reads (no index on position to keep up at sealing)."""
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi) // 2
            at = self._position(mid)
            if at is None:
                return None
            if at == position:
                return mid
            if at < position:
                lo = mid + 1
            else:
                hi = mid
        return None

    def _position(self, index: int) -> int | None:
        found = self.db.scalar(f"SELECT position FROM {self.leaves_table} WHERE leaf_index = ?",
                               (index,))
        return None if found is None else int(found)

    def tree(self) -> StoredTree:
        """Subtree roots of the sealed tree read from the leaf cache and the nodes table."""
        return StoredTree(self)

    # --- verification bookkeeping ----------------------------------------------------

    def mark_verified(self, number: int, at: datetime) -> None:
        with self.db.write():
            self.db.execute(f"DELETE FROM {self.verified_table} WHERE id = 1")
            self.db.execute(f"INSERT INTO {self.verified_table} (id, seal, verified_at) "
                            "VALUES (1, ?, ?)", (number, at.isoformat()))

    def last_verified(self) -> int | None:
        found = self.db.scalar(f"SELECT seal FROM {self.verified_table} WHERE id = 1")
        return None if found is None else int(found)


def seal_log(store: SealStore, log: NotificationLog, key: SealKey,
             now: datetime | None = None) -> Seal:
    """Append a seal over every event recorded so far; reads only the events since the last."""
    db = store.db
    with db.write():
        if db.dialect == "postgres":
            db.execute(f"LOCK TABLE {store.seals_table} IN SHARE ROW EXCLUSIVE MODE")
        last = store.latest()
        frontier = store.frontier(last.seal) if last else Frontier()
        after = last.last_position if last and last.tree_size else None
        last_position = last.last_position if last else 0
        stop = log.max_notification_id()
        for batch in leaves(log, after, stop=stop) if stop is not None else ():
            start = frontier.size
            nodes: list[tuple[int, int, bytes]] = []
            for _, leaf in batch:
                frontier.append(leaf, nodes, STRIDE)
            db.insert_rows(store.leaves_table, ("leaf_index", "position", "leaf_hash"),
                           [(start + i, pos, leaf) for i, (pos, leaf) in enumerate(batch)])
            db.insert_rows(store.nodes_table, ("height", "node_index", "hash"), nodes)
            last_position = batch[-1][0]
        fields = {
            "seal": (last.seal + 1) if last else 1,
            "tree_size": frontier.size,
            "root": frontier.root().hex(),
            "sealed_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
            "last_position": last_position,
            "previous": seal_digest(last.to_json()) if last else "",
            "key_id": key.key_id,
        }
        seal = Seal(**fields, signature=key.sign(seal_message(fields)).hex())
        db.execute(f"INSERT INTO {store.seals_table} ({_COLUMNS}, frontier) "
                   "VALUES (?,?,?,?,?,?,?,?,?)",
                   (*asdict(seal).values(), frontier.to_bytes()))
    return seal


class StoredTree:
    """Subtree roots of the sealed tree from stored hashes, for proofs of any size.

    A perfect subtree of height h is one stored node when h is a multiple of ``STRIDE``
    (a leaf when h = 0), else the fold of at most 2**(STRIDE-1) consecutive ones from
    the stored height below it (one range read). A node not stored (a seal made before
    the nodes table existed) is recomputed from the height below, so old seals still
    prove, only slower. Reads are cached for the life of the object.
    """

    def __init__(self, store: SealStore) -> None:
        self.store = store
        self._range = lru_cache(maxsize=4096)(self._read_range)

    def root(self, lo: int, hi: int) -> bytes:
        """The tree hash of leaves ``lo..hi-1`` (a subtree of RFC 9162's split)."""
        parts = [self.perfect(height, index) for height, index in perfect_subtrees(lo, hi)]
        acc = parts[-1]
        for part in reversed(parts[:-1]):
            acc = node_hash(part, acc)
        return acc

    def perfect(self, height: int, index: int) -> bytes:
        """The root of the perfect subtree of ``2**height`` leaves at ``index``."""
        base = height - height % STRIDE
        if base == height:
            return self._stored(height, index, index + 1)[0]
        count = 1 << (height - base)
        return root(self._stored(base, index * count, (index + 1) * count))

    def _stored(self, height: int, first: int, stop: int) -> list[bytes]:
        # Aligned reads of whole 2**STRIDE blocks: neighbouring path steps share them.
        span = 1 << STRIDE
        out: list[bytes] = []
        block = first // span
        while block * span < stop:
            got = self._range(height, block)
            lo, hi = max(first - block * span, 0), min(stop - block * span, span)
            if len(got) < hi:  # not stored: recompute those from the height below
                got = got + tuple(self._recompute(height, block * span + k)
                                  for k in range(len(got), hi))
            out.extend(got[lo:hi])
            block += 1
        return out

    def _recompute(self, height: int, index: int) -> bytes:
        if height == 0:
            raise SealError(f"leaf {index} is not in the leaf cache: run 'touchstream audit "
                            "verify'")
        return root(self._stored(height - STRIDE, index << STRIDE, (index + 1) << STRIDE))

    def _read_range(self, height: int, block: int) -> tuple[bytes, ...]:
        span = 1 << STRIDE
        if height == 0:
            rows = self.store.db.all(
                f"SELECT leaf_index, leaf_hash FROM {self.store.leaves_table} "
                "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
                (block * span, (block + 1) * span))
        else:
            rows = self.store.db.all(
                f"SELECT node_index, hash FROM {self.store.nodes_table} WHERE height = ? "
                "AND node_index >= ? AND node_index < ? ORDER BY node_index",
                (height, block * span, (block + 1) * span))
        out = []
        for k, (index, value) in enumerate(rows):  # a gap ends what is usable
            if int(index) != block * span + k:
                break
            out.append(bytes(value))
        return tuple(out)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_path(self.root, index, size)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        return consistency_path(self.root, size1, size2)
