"""Audit: a sealed (Merkle tree, Ed25519-signed) view of the event log; read-only on it."""
