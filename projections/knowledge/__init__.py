"""The knowledge-base read model."""
