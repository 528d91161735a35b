"""Running as a fleet: the channels' state in the shared PostgreSQL, and leases.

When the read store (else the event store) is PostgreSQL, every piece of
channel state lives there (``state_uri``): the IMAP checkpoints, UID ledger and
thread index, the call directory, the form rate limits, the forms secret, and
the leases that decide who does what. On SQLite (one host) the same ports are
SQLite files in the data folder, shared by the processes of that host.

Leases (``touchstream.fleet.leases``): a row per name with an owner and an
expiry, taken and renewed with one conditional upsert. One IMAP follower per
(account, folder), one worker per projection, one sender per queued email.
"""
