"""Does a record kept beside the log name a person? Matched by their contact points.

Used by erasure for what the person's events cannot point at: quarantined CDR
rows and held triage items. An email address matches anywhere in a field,
case-insensitively. A number matches a field whose digits end with its
national significant number with at most a short prefix in front (a country
code, ``00``, a trunk ``0``), so ``+44 20 7946 0123``, ``00442079460123`` and
``020 7946 0123`` all name ``+442079460123``, while a long id that happens to
end in the same digits does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from commands.identity import national_digits

MAX_PREFIX_DIGITS = 5  # "00" + a three-digit country code
MIN_NATIONAL_DIGITS = 6  # shorter "numbers" (extensions) would match too much
_FIELD_SEPARATORS = re.compile(r"[,;\t|\n\r]")
_NON_DIGITS = re.compile(r"\D")
# A number written inside free text: digits with the usual separators between them.
_NUMBER_RUN = re.compile(r"\+?\d[\d \-./()]*\d")


class Mentions:
    """A person's contact points, ready to be looked for in text."""

    def __init__(self, points: Iterable[tuple[str, str]]) -> None:
        self.emails = {value.lower() for kind, value in points if kind == "email"}
        # An address stands alone: ``ada@example.com`` is not inside ``nada@example.com``.
        self._email_re = re.compile("|".join(
            rf"(?<![\w.%+-]){re.escape(e)}(?![\w-]|\.\w)" for e in sorted(self.emails))
        ) if self.emails else None
        self.numbers = {n for kind, value in points if kind != "email"
                        if len(n := national_digits(value)) >= MIN_NATIONAL_DIGITS}

    def __bool__(self) -> bool:
        return bool(self.emails or self.numbers)

    def in_field(self, text: str) -> bool:
        """True when one field (a CSV cell, a form value, an address) names the person."""
        if self._email_re is not None and self._email_re.search(text.lower()):
            return True
        if not self.numbers:
            return False
        runs = [_NON_DIGITS.sub("", text), *(_NON_DIGITS.sub("", run)
                                            for run in _NUMBER_RUN.findall(text))]
        return any(digits.endswith(n) and len(digits) - len(n) <= MAX_PREFIX_DIGITS
                   for digits in runs for n in self.numbers)

    def in_row(self, raw: bytes) -> bool:
        """True when a delimited row (a CDR line, readable or not) names the person."""
        text = raw.decode("utf-8", errors="replace")
        return any(self.in_field(cell.strip().strip('"')) for cell in _FIELD_SEPARATORS.split(text))

    def in_value(self, value: Any) -> bool:
        """True when any string inside a JSON-like value names the person."""
        if isinstance(value, str):
            return self.in_field(value)
        if isinstance(value, dict):
            return any(self.in_value(k) or self.in_value(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(self.in_value(v) for v in value)
        return False
