"""Analysts' projections: one small Python file each, replayed or kept live."""
