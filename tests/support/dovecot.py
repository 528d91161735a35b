"""The throwaway Dovecot used by the IMAP tests (shared with the email benchmark)."""

from touchstream.bench.dovecot import DOVEADM, DOVECOT, PASSWORD, Dovecot, available, free_port

__all__ = ["DOVEADM", "DOVECOT", "PASSWORD", "Dovecot", "available", "free_port"]
