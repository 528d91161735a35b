"""The email channel's configuration: plain values, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

SECURITY_MODES = ("tls", "starttls", "plain")
FAX_NUMBER_FORMATS = ("national", "international")


@dataclass(frozen=True)
class InboundRules:
    """How messages are sorted: who is staff, which senders are fax gateways, what is too big."""

    staff_domains: frozenset[str] = frozenset()
    staff_addresses: frozenset[str] = frozenset()
    fax_gateways: frozenset[str] = frozenset()
    max_bytes: int = 25 * 1024 * 1024
    max_depth: int = 50
    body_cap: int = 32_000
    fax_number_format: str = "national"  # how gateways write numbers: national | international

    def is_staff(self, address: str) -> bool:
        addr = address.strip().lower()
        return addr in self.staff_addresses or addr.rpartition("@")[2] in self.staff_domains

    def is_fax_gateway(self, address: str) -> bool:
        addr = address.strip().lower()
        return addr in self.fax_gateways or addr.rpartition("@")[2] in self.fax_gateways


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    user: str
    password: str
    security: str = "tls"
    folders: tuple[str, ...] = ("INBOX",)
    account: str = ""
    ca_file: str | None = None
    timeout_s: float = 60.0
    poll_s: float = 60.0
    idle_s: float = 25 * 60.0  # re-issue IDLE well within the 29-minute limit
    batch: int = 100
    after: str = "none"  # none | seen | flag | move:<folder>
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0

    @property
    def account_name(self) -> str:
        return self.account or f"{self.user}@{self.host}"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "starttls"
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout_s: float = 60.0
    max_attempts: int = 8
    retry_base_s: float = 60.0
    retry_max_s: float = 3600.0
    poll_s: float = 5.0
