"""Adapters of the composition root: the SQL recorders with the source-key table, the
KurrentDB factory wrapper and the API key store. Built by ``touchstream.bootstrap``."""
