"""Contact point normalisation: one spelling per email address or number.

Emails: the domain is lower-cased and IDNA-encoded, the local part lower-cased
(mailbox local parts are case-sensitive by RFC, but no CRM user expects
``Ada@`` and ``ada@`` to be two people). Numbers: E.164 through
``phonenumbers`` with the configured default region for national formats, and
only numbers ``phonenumbers`` calls *valid* (a known country code, a length and
a prefix assigned in its numbering plan): ``+1 555 0100`` (no area code) is
refused. Numbers reserved for fiction are accepted on purpose, so demos, the
README and tests can use numbers that never ring anyone: most sit inside
assigned ranges and are valid anyway (Ofcom's ``020 7946 0xxx``, ``0113 496
0xxx``… drama ranges; North American ``555-01xx`` with a real area code such as
``+1 202 555 0123``); the two Ofcom drama ranges ``phonenumbers`` does not
know (mobile ``07700 900xxx`` and ``01632 960xxx``) are accepted explicitly.
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


# Ofcom's drama ranges outside phonenumbers' metadata (E.164 prefix, digits after it).
_FICTIONAL = (("+447700900", 3), ("+441632960", 3))


def _fictional(e164: str) -> bool:
    return any(e164.startswith(p) and len(e164) == len(p) + n for p, n in _FICTIONAL)


def normalise_number(raw: str, default_region: str | None) -> str:
    try:
        parsed = phonenumbers.parse(raw, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        national = not raw.strip().startswith("+")
        hint = (" (no TOUCHSTREAM_DEFAULT_REGION set: use +<country code>)"
                if national and not default_region else "")
        raise InvalidContactPointError(f"not a phone number: {raw!r}{hint}") from exc
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed) and not _fictional(e164):
        plan = phonenumbers.region_code_for_country_code(parsed.country_code)
        plan = f"+{parsed.country_code} ({plan})" if plan != "ZZ" else f"+{parsed.country_code}"
        raise InvalidContactPointError(
            f"not a valid phone number: {raw!r} ({parsed.national_number} is not a number "
            f"in the numbering plan of {plan})")
    return e164


def normalise(kind: str, raw: str, default_region: str | None) -> str:
    if kind == "email":
        return normalise_email(raw)
    if kind in ("phone", "fax"):
        return normalise_number(raw, default_region)
    raise InvalidContactPointError(f"unknown contact point kind {kind!r}")


def national_digits(e164: str) -> str:
    """The national significant number of a normalised number, digits only (how it
    appears however a PBX or a form wrote it: ``+44 20…``, ``0044 20…``, ``020…``)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "".join(c for c in e164 if c.isdigit())
    return str(phonenumbers.national_significant_number(parsed))


def contact_key(kind: str, value: str) -> str:
    """Phone and fax share one number space: a number belongs to one customer."""
    space = "email" if kind == "email" else "tel"
    return f"{space}:{value}"
