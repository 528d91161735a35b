"""The timeline read model."""
