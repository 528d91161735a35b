"""Contact point normalisation: one spelling per email address or number.

Emails: the domain is lower-cased and IDNA-encoded, the local part lower-cased
(mailbox local parts are case-sensitive by RFC, but no CRM user expects
``Ada@`` and ``ada@`` to be two people). Numbers: E.164 through
``phonenumbers`` with the configured default region for national formats.
"""

from __future__ import annotations

import phonenumbers

from domain.errors import DomainError


class InvalidContactPointError(DomainError):
    """Raised when an email address or phone/fax number cannot be understood."""


def normalise_email(raw: str) -> str:
    value = raw.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain or " " in value or "@" in local:
        raise InvalidContactPointError(f"not an email address: {raw!r}")
    try:
        ascii_domain = domain.strip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidContactPointError(f"bad email domain in {raw!r}") from exc
    if "." not in ascii_domain and ascii_domain != "localhost":
        raise InvalidContactPointError(f"email domain has no dot: {raw!r}")
    return f"{local.lower()}@{ascii_domain}"


def normalise_number(raw: str, default_region: str | None) -> str:
    try:
        parsed = phonenumbers.parse(raw, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        hint = "" if default_region else " (no TOUCHSTREAM_DEFAULT_REGION set: use +<country code>)"
        raise InvalidContactPointError(f"not a phone number: {raw!r}{hint}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidContactPointError(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise(kind: str, raw: str, default_region: str | None) -> str:
    if kind == "email":
        return normalise_email(raw)
    if kind in ("phone", "fax"):
        return normalise_number(raw, default_region)
    raise InvalidContactPointError(f"unknown contact point kind {kind!r}")


def contact_key(kind: str, value: str) -> str:
    """Phone and fax share one number space: a number belongs to one customer."""
    space = "email" if kind == "email" else "tel"
    return f"{space}:{value}"
