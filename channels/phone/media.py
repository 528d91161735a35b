"""Fetching a document a webhook points at, without becoming an SSRF proxy.

Only after the webhook's signature was checked; only from configured hosts;
only to public addresses (the address is resolved once, checked, and the
connection pinned to it, so DNS cannot be re-pointed between check and use);
no redirects; a size cap enforced while reading; a timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 64 * 1024


class MediaRefusedError(Exception):
    """Raised when a media URL may not be fetched (host, scheme, address, redirect, size)."""


class MediaUnavailableError(Exception):
    """Raised when an allowed media URL could not be fetched now (network, server error)."""


@dataclass(frozen=True)
class FetchedMedia:
    data: bytes
    content_type: str | None


@dataclass(frozen=True)
class MediaPolicy:
    allowed_hosts: frozenset[str]
    max_bytes: int
    allow_private_addresses: bool = False
    require_https: bool = True
    timeout_s: float = 20.0

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if allowed.startswith(".") and host.endswith(allowed):
                return True
            if host == allowed:
                return True
        return False


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int, policy: MediaPolicy) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise MediaUnavailableError(f"cannot resolve {host}: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise MediaUnavailableError(f"{host} has no address")
    if not policy.allow_private_addresses:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise MediaRefusedError(f"{host} resolves to a non-public address ({private[0]})")
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, certificate checked against the host name."""

    def __init__(self, address: str, hostname: str, port: int, timeout: float) -> None:
        super().__init__(hostname, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address
        self._hostname = hostname

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            sock, server_hostname=self._hostname)


def fetch_media(url: str, policy: MediaPolicy) -> FetchedMedia:
    """The document at ``url``, or ``MediaRefusedError`` / ``MediaUnavailableError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (policy.require_https and parts.scheme != "https"):
        raise MediaRefusedError(f"media URL scheme {parts.scheme!r} is not allowed")
    host = parts.hostname
    if not host or not policy.host_allowed(host):
        raise MediaRefusedError(f"media host {host!r} is not in the allowed list")
    if parts.username or parts.password:
        raise MediaRefusedError("media URLs with credentials are not allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve(host, port, policy)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = _PinnedHTTPSConnection(address, host, port, policy.timeout_s)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=policy.timeout_s)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request("GET", target, headers={"Host": parts.netloc.rpartition("@")[2],
                                             "User-Agent": "touchstream-fax/1",
                                             "Accept": "application/pdf, image/tiff, */*"})
        response = conn.getresponse()
        return _read(response, policy.max_bytes)
    except (OSError, http.client.HTTPException) as exc:
        raise MediaUnavailableError(f"fetching the media failed: {exc}") from exc
    finally:
        conn.close()


def _read(response: http.client.HTTPResponse, max_bytes: int) -> FetchedMedia:
    if 300 <= response.status < 400:
        raise MediaRefusedError(f"media URL answered a redirect ({response.status}); "
                                "redirects are not followed")
    if response.status >= 500:
        raise MediaUnavailableError(f"media server answered {response.status}")
    if response.status != 200:
        raise MediaRefusedError(f"media server answered {response.status}")
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise MediaRefusedError(f"document larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise MediaRefusedError(f"document larger than {max_bytes} bytes")
        chunks.append(chunk)
    content_type = response.getheader("Content-Type")
    return FetchedMedia(b"".join(chunks), content_type.split(";")[0] if content_type else None)
