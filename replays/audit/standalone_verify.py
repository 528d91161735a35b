#!/usr/bin/env python3
"""Standalone verifier for Touchstream's sealed event log (RFC 9162 Merkle tree, Ed25519 seals).

ONE file, no imports from Touchstream: the Python standard library, plus the
``cryptography`` package for the Ed25519 signature check. An auditor copies
this file and runs it on the JSON that ``touchstream audit`` prints::

    python3 standalone_verify.py seals    --public-key audit-public.pem seals.jsonl
    python3 standalone_verify.py inclusion --public-key audit-public.pem proof.json
    python3 standalone_verify.py consistency --public-key audit-public.pem proof.json

Exit code 0: everything checked is valid; 1: something is not (the reason is
printed); 2: the input is not what was expected.

The definitions here are the reference; Touchstream imports them from this file.

Tree (RFC 9162 §2.1): SHA-256; empty tree = SHA-256(""); leaf = H(0x00 ‖ data);
node = H(0x01 ‖ left ‖ right); a tree of n > 1 leaves splits at the largest power
of two smaller than n.

Leaf data (one stored event record, exactly as stored — after compression and
encryption, so an erasure by key destruction never changes it)::

    b"touchstream-event/1" ‖ field(originator_id as UTF-8 text) ‖ u64(originator_version)
                          ‖ field(topic as UTF-8) ‖ field(state bytes)

where field(b) = u32(len(b)) ‖ b and u32/u64 are big-endian. A UUID originator
id is written in its canonical lower-case hyphenated form. The log position is
not part of the leaf: the leaf's index in the tree is its place in the log.

Seal (what is signed with Ed25519, UTF-8, one field per line, hashes hex)::

    touchstream-seal/1
    <seal number>
    <tree size>
    <root hash>
    <sealed at, ISO 8601 UTC>
    <log position of the last sealed event, 0 for none>
    <hash of the previous seal's signed message, or empty for the first seal>
    <key id: first 16 bytes of SHA-256 of the raw 32-byte public key, hex>
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
from collections.abc import Sequence
from typing import Any

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
RECORD_TAG = b"touchstream-event/1"
SEAL_TAG = "touchstream-seal/1"


class VerificationError(Exception):
    """Raised when a proof, a seal or a signature does not verify; the message says why."""


# --- hashing -------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _field(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def record_bytes(originator_id: str, originator_version: int, topic: str, state: bytes) -> bytes:
    """The canonical encoding of one stored event record (the leaf data)."""
    return b"".join((
        RECORD_TAG,
        _field(originator_id.encode("utf-8")),
        struct.pack(">Q", originator_version),
        _field(topic.encode("utf-8")),
        _field(state),
    ))


# --- proofs (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------


def _check_hashes(**hashes: bytes) -> None:
    for name, value in hashes.items():
        if len(value) != HASH_SIZE:
            raise VerificationError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion(leaf_index: int, tree_size: int, leaf: bytes,
                        proof: Sequence[bytes]) -> bytes:
    """The root a leaf hash and its inclusion proof lead to (RFC 9162 §2.1.3.2)."""
    if leaf_index < 0 or leaf_index >= tree_size:
        raise VerificationError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    _check_hashes(leaf_hash=leaf)
    for i, p in enumerate(proof):
        _check_hashes(**{f"proof[{i}]": p})
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise VerificationError unless ``proof`` shows ``leaf`` at ``leaf_index`` under ``root``."""
    _check_hashes(root=root)
    if root_from_inclusion(leaf_index, tree_size, leaf, proof) != root:
        raise VerificationError("inclusion proof does not lead to the root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise VerificationError unless the tree of ``size2`` extends the tree of ``size1``."""
    _check_hashes(root1=root1, root2=root2)
    for i, p in enumerate(proof):
        _check_hashes(**{f"proof[{i}]": p})
    if size1 <= 0:
        raise VerificationError("the first tree size must be positive (an empty tree proves "
                                "nothing)")
    if size1 > size2:
        raise VerificationError(f"tree size {size1} is larger than {size2}")
    if size1 == size2:
        if proof:
            raise VerificationError("equal tree sizes need an empty proof")
        if root1 != root2:
            raise VerificationError("equal tree sizes with different roots")
        return
    if not proof:
        raise VerificationError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != root1:
        raise VerificationError("consistency proof does not lead to the first root")
    if sr != root2:
        raise VerificationError("consistency proof does not lead to the second root")


# --- seals -------------------------------------------------------------------------


def seal_message(seal: dict[str, Any]) -> bytes:
    """The bytes an Ed25519 seal signature covers (see the module docstring)."""
    lines = [SEAL_TAG, str(int(seal["seal"])), str(int(seal["tree_size"])), seal["root"],
             seal["sealed_at"], str(int(seal["last_position"])), seal["previous"] or "",
             seal["key_id"]]
    return ("\n".join(lines) + "\n").encode("utf-8")


def seal_digest(seal: dict[str, Any]) -> str:
    """What the next seal's ``previous`` holds: SHA-256 of this seal's signed message."""
    return hashlib.sha256(seal_message(seal)).hexdigest()


def key_id(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:32]


def load_public_key(pem: bytes) -> Any:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError("the public key is not an Ed25519 key")
    return key


def raw_public_key(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def verify_seal(seal: dict[str, Any], public_key: Any) -> None:
    """Raise VerificationError unless ``seal`` is well formed and signed by ``public_key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        root = bytes.fromhex(seal["root"])
        signature = bytes.fromhex(seal["signature"])
        int(seal["tree_size"])
    except (KeyError, ValueError, TypeError) as exc:
        raise VerificationError(f"malformed seal: {exc}") from exc
    _check_hashes(root=root)
    if seal["tree_size"] < 0:
        raise VerificationError("negative tree size")
    if seal["tree_size"] == 0 and root != EMPTY_ROOT:
        raise VerificationError("an empty tree must have the empty root")
    expected = key_id(raw_public_key(public_key))
    if seal["key_id"] != expected:
        raise VerificationError(f"seal {seal['seal']} names key {seal['key_id']}, "
                                f"not the trusted key {expected}")
    try:
        public_key.verify(signature, seal_message(seal))
    except InvalidSignature as exc:
        raise VerificationError(f"seal {seal['seal']}: the signature does not verify") from exc


def verify_seal_chain(seals: Sequence[dict[str, Any]], public_key: Any) -> None:
    """Every seal signed, numbered without gaps, linked to its predecessor, never shrinking."""
    previous: dict[str, Any] | None = None
    for seal in seals:
        verify_seal(seal, public_key)
        if previous is not None:
            if seal["seal"] != previous["seal"] + 1:
                raise VerificationError(f"seal {seal['seal']} follows seal {previous['seal']}: "
                                        "a seal is missing")
            if seal["previous"] != seal_digest(previous):
                raise VerificationError(f"seal {seal['seal']} does not link to seal "
                                        f"{previous['seal']}")
            if seal["tree_size"] < previous["tree_size"]:
                raise VerificationError(f"seal {seal['seal']} has a smaller tree than seal "
                                        f"{previous['seal']}")
        previous = seal


# --- the command line ----------------------------------------------------------------


def _hashes(values: Sequence[str] | None) -> list[bytes]:
    return [bytes.fromhex(v) for v in values or ()]


def check_inclusion(doc: dict[str, Any], public_key: Any) -> str:
    """Check an ``audit prove`` document: the record, its proof and the seal."""
    seal = doc["seal"]
    verify_seal(seal, public_key)
    record = doc["record"]
    data = record_bytes(record["originator_id"], int(record["originator_version"]),
                        record["topic"], base64.b64decode(record["state"], validate=True))
    leaf = leaf_hash(data)
    if doc.get("leaf_hash") and bytes.fromhex(doc["leaf_hash"]) != leaf:
        raise VerificationError("the record does not hash to the stated leaf hash")
    if int(doc["tree_size"]) != int(seal["tree_size"]):
        raise VerificationError("the proof is for another tree size than the seal's")
    verify_inclusion(int(doc["leaf_index"]), int(doc["tree_size"]), leaf,
                     _hashes(doc["proof"]), bytes.fromhex(seal["root"]))
    return (f"OK: event {record['originator_id']} v{record['originator_version']} is leaf "
            f"{doc['leaf_index']} of the {seal['tree_size']}-event log sealed by seal "
            f"{seal['seal']} at {seal['sealed_at']}")


def check_consistency(doc: dict[str, Any], public_key: Any) -> str:
    """Check an ``audit consistency`` document: both seals and the proof between them."""
    first, second = doc["first"], doc["second"]
    verify_seal(first, public_key)
    verify_seal(second, public_key)
    verify_consistency(int(first["tree_size"]), int(second["tree_size"]),
                       bytes.fromhex(first["root"]), bytes.fromhex(second["root"]),
                       _hashes(doc["proof"]))
    return (f"OK: seal {second['seal']} ({second['tree_size']} events) extends seal "
            f"{first['seal']} ({first['tree_size']} events) without changing them")


def check_seals(lines: Sequence[str], public_key: Any) -> str:
    seals = [json.loads(line) for line in lines if line.strip()]
    verify_seal_chain(seals, public_key)
    last = seals[-1] if seals else None
    if last is None:
        return "OK: no seals"
    return f"OK: {len(seals)} seals, chained and signed; the last covers {last['tree_size']} events"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("seals", "inclusion", "consistency"))
    parser.add_argument("file", help="the JSON (or JSON lines for seals) printed by touchstream")
    parser.add_argument("--public-key", required=True, help="the seal public key (PEM)")
    args = parser.parse_args(argv)
    try:
        with open(args.public_key, "rb") as fh:
            public_key = load_public_key(fh.read())
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
        if args.what == "seals":
            print(check_seals(text.splitlines(), public_key))
        elif args.what == "inclusion":
            print(check_inclusion(json.loads(text), public_key))
        else:
            print(check_consistency(json.loads(text), public_key))
    except VerificationError as exc:
        print(f"INVALID: {exc}")
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot read the input: {exc!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
