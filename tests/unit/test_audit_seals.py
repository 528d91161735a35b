"""Seals as the standalone verifier sees them, and the verifier's own independence."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from replays.audit import standalone_verify as sv
from replays.audit.keys import SealKey

VERIFIER = Path(sv.__file__)


def test_the_standalone_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def _chain(key: SealKey, sizes: list[int]) -> list[dict[str, Any]]:
    seals: list[dict[str, Any]] = []
    for number, size in enumerate(sizes, start=1):
        fields = {"seal": number, "tree_size": size, "root": f"{number:064x}",
                  "sealed_at": f"2026-01-0{number}T00:00:00+00:00", "last_position": size,
                  "previous": sv.seal_digest(seals[-1]) if seals else "", "key_id": key.key_id}
        seals.append({**fields, "signature": key.sign(sv.seal_message(fields)).hex()})
    return seals


def test_a_chain_of_signed_seals_verifies() -> None:
    key = SealKey.generate()
    sv.verify_seal_chain(_chain(key, [3, 5, 5, 9]), key.public_key)


@pytest.mark.parametrize("field", ["tree_size", "root", "sealed_at", "last_position",
                                   "previous", "seal"])
def test_changing_any_signed_field_breaks_the_signature(field: str) -> None:
    key = SealKey.generate()
    seal = _chain(key, [3, 5])[1]
    seal[field] = (seal[field] + 1 if isinstance(seal[field], int)
                   else seal[field][:-1] + ("0" if seal[field][-1:] != "0" else "1"))
    with pytest.raises(sv.VerificationError):
        sv.verify_seal(seal, key.public_key)


def test_a_removed_a_rewritten_or_a_shrinking_seal_breaks_the_chain() -> None:
    key = SealKey.generate()
    seals = _chain(key, [3, 5, 9])
    with pytest.raises(sv.VerificationError, match="missing"):
        sv.verify_seal_chain([seals[0], seals[2]], key.public_key)
    other = _chain(key, [4, 5, 9])
    with pytest.raises(sv.VerificationError, match="does not link"):
        sv.verify_seal_chain([other[0], seals[1]], key.public_key)
    with pytest.raises(sv.VerificationError, match="smaller tree"):
        sv.verify_seal_chain(_chain(key, [5, 3]), key.public_key)


def test_a_seal_signed_by_another_key_is_named_as_such() -> None:
    ours, theirs = SealKey.generate(), SealKey.generate()
    with pytest.raises(sv.VerificationError, match="not the trusted key"):
        sv.verify_seal(_chain(theirs, [3])[0], ours.public_key)
    forged = _chain(theirs, [3])[0]
    forged["key_id"] = ours.key_id  # claims our key, carries their signature
    with pytest.raises(sv.VerificationError, match="signature does not verify"):
        sv.verify_seal(forged, ours.public_key)


def test_the_leaf_encoding_separates_its_fields() -> None:
    a = sv.record_bytes("ab", 1, "t", b"")
    b = sv.record_bytes("a", 1, "bt", b"")
    assert a != b and sv.leaf_hash(a) != sv.leaf_hash(b)
