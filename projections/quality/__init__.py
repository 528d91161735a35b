"""Data-quality read model."""
