"""RFC 9162 Merkle tree: known answers from two public suites, and properties over random logs.

Vectors: the eight classic leaves, roots, paths and proofs of
google/certificate-transparency ``cpp/merkletree/merkle_tree_test.cc``
(reconstructed below), and all 196 cases of transparency-dev/merkle
``testdata/inclusion`` and ``testdata/consistency`` (vendored unchanged in
``tests/fixtures/merkle``, origin and commit noted there).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replays.audit import standalone_verify as sv
from replays.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    VerificationError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "merkle"

# merkle_tree_test.cc: kInputs, kSHA256Roots, kSHA256Paths, kSHA256Proofs
CT_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
_A = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
_B = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
_C = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
_D = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
_E = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
_F = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
# (leaf number counted from 1 as in the C++ test, tree size, path)
CT_PATHS = [
    (1, 1, []),
    (1, 8, [_A, _B, _C]),
    (6, 8, [_D, _E, _F]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", _B, _D]),
]
CT_PROOFS = [
    (1, 1, []),
    (1, 8, [_A, _B, _C]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", _E, _F]),
    (2, 5, [_B, _D]),
]
CT_LEAVES = [leaf_hash(d) for d in CT_INPUTS]


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_eight_classic_leaves(size: int) -> None:
    assert root(CT_LEAVES[:size]) == CT_ROOTS[size - 1]
    frontier = Frontier()
    frontier.extend(CT_LEAVES[:size])
    assert frontier.root() == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "path"), CT_PATHS)
def test_paths_of_the_classic_tree(leaf: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(CT_LEAVES, leaf - 1, size)
    assert [p.hex() for p in proof] == path
    sv.verify_inclusion(leaf - 1, size, CT_LEAVES[leaf - 1], proof, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "expected"), CT_PROOFS)
def test_consistency_proofs_of_the_classic_tree(size1: int, size2: int,
                                                expected: list[str]) -> None:
    proof = consistency_proof(CT_LEAVES, size1, size2)
    assert [p.hex() for p in proof] == expected
    sv.verify_consistency(size1, size2, CT_ROOTS[size1 - 1], CT_ROOTS[size2 - 1], proof)


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _cases(kind: str) -> list[dict[str, Any]]:
    doc = json.loads((FIXTURES / f"{kind}.json").read_text())
    return list(doc["cases"])


@pytest.mark.parametrize("case", _cases("inclusion"), ids=lambda c: c["file"])
def test_transparency_dev_inclusion_vectors(case: dict[str, Any]) -> None:
    def check() -> None:
        sv.verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]),
                            [_b64(p) for p in case["proof"] or ()], _b64(case["root"]))

    if case["wantErr"]:
        with pytest.raises(VerificationError):
            check()
    else:
        check()


# The one case the suite accepts and we refuse on purpose: equal sizes with equal
# 12-byte "don't care" roots. A hash that is not 32 bytes is always rejected here.
STRICTER = {"testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


@pytest.mark.parametrize("case", _cases("consistency"), ids=lambda c: c["file"])
def test_transparency_dev_consistency_vectors(case: dict[str, Any]) -> None:
    def check() -> None:
        sv.verify_consistency(case["size1"], case["size2"], _b64(case["root1"]),
                              _b64(case["root2"]), [_b64(p) for p in case["proof"] or ()])

    if case["file"] in STRICTER:
        assert len(_b64(case["root1"])) != 32
        with pytest.raises(VerificationError, match="not 32"):
            check()
    elif case["wantErr"]:
        with pytest.raises(VerificationError):
            check()
    else:
        check()


def test_vendored_suites_are_complete() -> None:
    cases = _cases("inclusion") + _cases("consistency")
    assert len(cases) == 196
    assert sum(not c["wantErr"] for c in cases) == 12


def test_rejections_the_field_guide_lists() -> None:
    r = CT_ROOTS[7]
    with pytest.raises(VerificationError, match="32"):
        sv.verify_consistency(1, 8, r[:31], r, [r])
    with pytest.raises(VerificationError, match="positive"):
        sv.verify_consistency(0, 8, EMPTY_ROOT, r, [r])
    with pytest.raises(VerificationError, match="larger"):
        sv.verify_consistency(8, 7, r, CT_ROOTS[6], [r])
    with pytest.raises(VerificationError, match="empty proof"):
        sv.verify_consistency(8, 8, r, r, [r])
    with pytest.raises(VerificationError, match="different roots"):
        sv.verify_consistency(8, 8, r, CT_ROOTS[6], [])
    sv.verify_consistency(8, 8, r, r, [])
    with pytest.raises(VerificationError, match="outside"):
        sv.verify_inclusion(8, 8, CT_LEAVES[0], [], r)


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1:]


logs = st.lists(st.binary(max_size=24), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(data=logs, picks=st.data())
def test_inclusion_proofs_verify_and_any_changed_byte_fails(data: list[bytes],
                                                            picks: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    size = picks.draw(st.integers(1, len(leaves)))
    index = picks.draw(st.integers(0, size - 1))
    tree_root = root(leaves[:size])
    proof = inclusion_proof(leaves, index, size)
    sv.verify_inclusion(index, size, leaves[index], proof, tree_root)
    # any single byte changed: in the record, the root, or any proof hash
    blobs = [data[index], tree_root, *proof]
    which = picks.draw(st.integers(0, len(blobs) - 1))
    if not blobs[which]:
        which = 1  # an empty record has no byte to change
    at = picks.draw(st.integers(0, len(blobs[which]) - 1))
    blobs[which] = _flip(blobs[which], at)
    with pytest.raises(VerificationError):
        sv.verify_inclusion(index, size, leaf_hash(blobs[0]), blobs[2:], blobs[1])


@settings(max_examples=150, deadline=None)
@given(data=logs, picks=st.data())
def test_consistency_proofs_verify_and_any_changed_byte_fails(data: list[bytes],
                                                              picks: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    size2 = picks.draw(st.integers(1, len(leaves)))
    size1 = picks.draw(st.integers(1, size2))
    root1, root2 = root(leaves[:size1]), root(leaves[:size2])
    proof = consistency_proof(leaves, size1, size2)
    sv.verify_consistency(size1, size2, root1, root2, proof)
    blobs = [root1, root2, *proof]
    which = picks.draw(st.integers(0, len(blobs) - 1))
    blobs[which] = _flip(blobs[which], picks.draw(st.integers(0, 31)))
    with pytest.raises(VerificationError):
        sv.verify_consistency(size1, size2, blobs[0], blobs[1], blobs[2:])


@settings(max_examples=100, deadline=None)
@given(data=logs, picks=st.data())
def test_frontier_resumed_from_bytes_gives_the_roots_of_every_prefix(
        data: list[bytes], picks: st.DataObject) -> None:
    leaves = [leaf_hash(d) for d in data]
    cut = picks.draw(st.integers(0, len(leaves)))
    first = Frontier()
    first.extend(leaves[:cut])
    resumed = Frontier.from_bytes(cut, first.to_bytes())
    for n in range(cut, len(leaves)):
        assert resumed.root() == root(leaves[:n])
        resumed.append(leaves[n])
    assert resumed.root() == root(leaves)
