"""Public web forms: which forms exist and which fields they ask for (configurable).

Every form asks for an ``email`` or a ``phone`` field: that is how a
submission finds its customer (or becomes a new prospect).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.web.guards import RateLimit

FieldKind = Literal["text", "email", "tel", "textarea", "select"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED = frozenset({"_token"})


class FormConfigError(ValueError):
    """Raised when a form definition cannot be served."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = False
    max_length: int = 500
    choices: tuple[str, ...] = ()
    hint: str | None = None


@dataclass(frozen=True)
class FormSpec:
    name: str
    title: str
    fields: tuple[FieldSpec, ...]
    intro: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name.replace("-", "_")):
            raise FormConfigError(f"form name {self.name!r}: lower-case letters, digits, - or _")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise FormConfigError(f"form {self.name!r} has a field twice")
        for f in self.fields:
            if not _NAME.match(f.name) or f.name in RESERVED:
                raise FormConfigError(f"form {self.name!r}: bad field name {f.name!r}")
            if f.kind == "select" and not f.choices:
                raise FormConfigError(f"form {self.name!r}: select {f.name!r} has no choices")
            if not 1 <= f.max_length <= 10_000:
                raise FormConfigError(f"form {self.name!r}: {f.name!r} max_length out of range")
        if not {"email", "phone"} & set(names):
            raise FormConfigError(
                f"form {self.name!r} needs an 'email' or 'phone' field to find the customer")


def _common(*extra: FieldSpec) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("name", "Your name", required=True, max_length=200),
        FieldSpec("email", "Email address", kind="email", required=True, max_length=254),
        FieldSpec("phone", "Phone number", kind="tel", max_length=40,
                  hint="Optional. Include the country code if you are abroad."),
        *extra,
    )


DEFAULT_FORMS: dict[str, FormSpec] = {
    spec.name: spec
    for spec in (
        FormSpec("contact", "Contact us", _common(
            FieldSpec("message", "Your message", kind="textarea", required=True,
                      max_length=5000))),
        FormSpec("quote-request", "Request a quote", _common(
            FieldSpec("company", "Company", max_length=200),
            FieldSpec("product", "Product or service", required=True, max_length=200),
            FieldSpec("quantity", "Quantity", max_length=20),
            FieldSpec("details", "Details", kind="textarea", max_length=5000))),
        FormSpec("service-request", "Request service", _common(
            FieldSpec("product", "Product", required=True, max_length=200),
            FieldSpec("urgency", "Urgency", kind="select", required=True,
                      choices=("low", "normal", "high")),
            FieldSpec("description", "What happened?", kind="textarea", required=True,
                      max_length=5000))),
        FormSpec("complaint", "Make a complaint", _common(
            FieldSpec("reference", "Order or case reference", max_length=100),
            FieldSpec("complaint", "Your complaint", kind="textarea", required=True,
                      max_length=5000))),
        FormSpec("feedback", "Give feedback", _common(
            FieldSpec("rating", "How satisfied are you?", kind="select", required=True,
                      choices=("1", "2", "3", "4", "5"),
                      hint="1 = not at all, 5 = very satisfied"),
            FieldSpec("comments", "Comments", kind="textarea", max_length=5000))),
    )
}


def forms_from_json(data: Mapping[str, Any]) -> dict[str, FormSpec]:
    """``{"contact": {"title": …, "intro": …, "fields": [{"name": …, "label": …}, …]}}``."""
    forms: dict[str, FormSpec] = {}
    for name, spec in data.items():
        try:
            fields = tuple(
                FieldSpec(**{**f, "choices": tuple(f.get("choices", ()))}) for f in spec["fields"]
            )
            forms[name] = FormSpec(name=name, title=spec["title"], fields=fields,
                                   intro=spec.get("intro"))
        except (KeyError, TypeError) as exc:
            raise FormConfigError(f"form {name!r}: {exc}") from exc
    return forms


@dataclass(frozen=True)
class FormsConfig:
    secret: str
    forms: Mapping[str, FormSpec] = field(default_factory=lambda: dict(DEFAULT_FORMS))
    default_region: str | None = None
    min_fill_s: float = 3.0
    max_age_s: float = 24 * 3600.0
    max_body_bytes: int = 32 * 1024
    rate_limit: int = 10
    rate_window_s: float = 60.0
    honeypot: str = "website"
    trust_forwarded_for: bool = False
    clock: Callable[[], float] = time.time
    # Counts hits across the hub's processes/hosts (the served app's state store);
    # None: each process counts in memory.
    limiter: RateLimit | None = None

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise FormConfigError("the forms secret must be at least 16 characters")
