"""The summary read model."""
