"""Accounts read model."""
