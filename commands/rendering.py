"""Rendering a message template version against a customer's data, in a Jinja2 sandbox.

Templates are written by staff, so they run in ``ImmutableSandboxedEnvironment``
(no attribute access to internals, no mutation of the data given). The HTML
body is rendered with autoescaping on, so a customer's name containing markup
stays text; the subject and the plain-text body go out as ``text/plain`` and
are rendered without HTML escaping (an ``&amp;`` in a plain-text email would be
a visible mistake, and plain text executes nothing). A variable the template
uses but nobody gave is an error (``StrictUndefined``), never an empty gap in
a letter to a customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from domain.customer import Customer
from domain.errors import DomainError


class TemplateRenderError(DomainError):
    """Raised when a template does not render: a syntax error, a variable nobody gave,
    or something the sandbox refuses."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str | None


def _environment(escape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=escape, undefined=StrictUndefined,
                                         keep_trailing_newline=True)


def context(customer: Customer, variables: dict[str, str],
            case_id: str | None = None) -> dict[str, Any]:
    """What a template sees: ``customer`` (name, company, language), ``case`` (id and a
    short reference) and the caller's ``variables`` (also at top level)."""
    profile = customer.profile
    cid = str(customer.id).removeprefix("customer-")
    return {**variables, "vars": dict(variables),
            "customer": {"id": cid, "name": customer.name, "company": customer.company,
                         "language": profile.get("language")},
            "case": {"id": case_id, "reference": (case_id or "")[:8].upper()}}


def render(version: dict[str, Any], data: dict[str, Any]) -> Rendered:
    """Render one template version (subject, text and optional HTML body)."""
    try:
        text_env, html_env = _environment(False), _environment(True)
        subject = text_env.from_string(version["subject"]).render(data)
        body_text = text_env.from_string(version["body_text"]).render(data)
        html = version.get("body_html")
        body_html = html_env.from_string(html).render(data) if html else None
    except SecurityError as exc:
        raise TemplateRenderError(f"the template sandbox refused: {exc}") from exc
    except TemplateError as exc:
        raise TemplateRenderError(f"the template does not render: {exc}") from exc
    # A subject is one header line: a rendered line break must not start a new header.
    return Rendered(" ".join(subject.split()), body_text, body_html)
