"""Erasure as an operator runs it: the command, then everything kept beside the log.

Order matters for a crash: blob references are read from the events while the
key still opens them; the command records the erasure and destroys the keys;
then blobs are shredded. Running the same erasure again repeats every step
that has anything left to do and answers ``duplicate``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from channels.blobs import BlobStore
from commands.hub import Hub
from commands.ports import Recorded
from commands.privacy import EraseCustomer, erase_customer, merge_group, refs_of
from touchstream.privacy.datakeys import DataKeys


@dataclass
class ErasureReport:
    """What one erasure did (no personal data in it: ids and counts)."""

    recorded: Recorded
    customers: list[str] = field(default_factory=list)
    blobs_shredded: int = 0


class Eraser:
    """Erases a person everywhere the hub keeps their data."""

    def __init__(self, hub: Hub, keys: DataKeys, blobs: BlobStore) -> None:
        self.hub = hub
        self.keys = keys
        self.blobs = blobs

    def erase(self, customer_id: UUID, reason: str, actor: str) -> ErasureReport:
        group = merge_group(self.hub, customer_id)  # CustomerNotFoundError for an unknown id
        refs: set[str] = set()
        for member in group:
            if not self.keys.is_erased(str(member)):
                refs |= refs_of(self.hub.stream(member))
        cmd = EraseCustomer(customer_id=customer_id, reason=reason, actor=actor)
        recorded = erase_customer(self.hub, cmd, self.keys)
        shredded = sum(1 for ref in sorted(refs) if _shred(self.blobs, ref))
        return ErasureReport(recorded, [str(m) for m in group], shredded)


def _shred(blobs: BlobStore, ref: str) -> bool:
    """Overwrite a blob's bytes, then unlink it (a no-op for a ref that is not a blob)."""
    try:
        path: Path = blobs._path(ref)
    except ValueError:
        return False
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    return True
