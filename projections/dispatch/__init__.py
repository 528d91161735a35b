"""The dispatch board read model."""
