"""The commissions read model."""
