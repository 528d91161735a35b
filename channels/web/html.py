"""Accessible HTML for public forms: labels, hints, errors next to their fields."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from channels.web.config import FieldSpec, FormSpec

STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;
line-height:1.5;color:#1b1b1b}
label{display:block;font-weight:600;margin-top:1rem}
input,textarea,select{display:block;width:100%;padding:.5rem;font:inherit;
border:2px solid #555;border-radius:4px;box-sizing:border-box}
textarea{min-height:8rem}
.hint{color:#444;margin:.25rem 0}
.error{color:#b00020;font-weight:600;margin:.25rem 0}
[aria-invalid=true]{border-color:#b00020}
.summary{border:3px solid #b00020;padding:1rem;margin:1rem 0}
.hp,.visually-hidden{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit;font-weight:600}
:focus{outline:3px solid #ffbf47;outline-offset:2px}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _control(f: FieldSpec, value: str, error: str | None) -> str:
    fid = f"field-{f.name}"
    described = [x for x in (f"{fid}-hint" if f.hint else None,
                             f"{fid}-error" if error else None) if x]
    attrs = [f'id="{fid}"', f'name="{escape(f.name)}"']
    if f.required:
        attrs += ["required", 'aria-required="true"']
    if error:
        attrs.append('aria-invalid="true"')
    if described:
        attrs.append(f'aria-describedby="{" ".join(described)}"')
    joined = " ".join(attrs)
    if f.kind == "textarea":
        return f'<textarea {joined} maxlength="{f.max_length}">{escape(value)}</textarea>'
    if f.kind == "select":
        options = ['<option value="">Choose…</option>'] + [
            f'<option value="{escape(c)}"{" selected" if c == value else ""}>{escape(c)}</option>'
            for c in f.choices
        ]
        return f"<select {joined}>{''.join(options)}</select>"
    auto = {"email": "email", "tel": "tel"}.get(f.kind, "name" if f.name == "name" else "on")
    return (f'<input type="{f.kind}" {joined} maxlength="{f.max_length}" '
            f'autocomplete="{auto}" value="{escape(value)}">')


def _field(f: FieldSpec, value: str, error: str | None) -> str:
    fid = f"field-{f.name}"
    mark = ' <span aria-hidden="true">*</span>' if f.required else " (optional)"
    hint = f'<p class="hint" id="{fid}-hint">{escape(f.hint)}</p>' if f.hint else ""
    err = (f'<p class="error" id="{fid}-error"><span class="visually-hidden">Error: </span>'
           f"{escape(error)}</p>") if error else ""
    return (f'<div class="field"><label for="{fid}">{escape(f.label)}{mark}</label>'
            f"{hint}{err}{_control(f, value, error)}</div>")


def render_form(
    spec: FormSpec,
    action: str,
    token: str,
    honeypot: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    form_error: str | None = None,
) -> str:
    values = values or {}
    errors = errors or {}
    parts = [f"<h1>{escape(spec.title)}</h1>"]
    if spec.intro:
        parts.append(f"<p>{escape(spec.intro)}</p>")
    if errors or form_error:
        items = [f"<li>{escape(form_error)}</li>"] if form_error else []
        items += [f'<li><a href="#field-{escape(k)}">{escape(v)}</a></li>'
                  for k, v in errors.items() if k in {f.name for f in spec.fields}]
        items += [f"<li>{escape(v)}</li>" for k, v in errors.items()
                  if k not in {f.name for f in spec.fields}]
        parts.append('<div class="summary" role="alert" aria-labelledby="error-summary-title" '
                     'tabindex="-1" id="error-summary">'
                     '<h2 id="error-summary-title">There is a problem</h2>'
                     f"<ul>{''.join(items)}</ul></div>")
    parts.append(f'<form method="post" action="{escape(action)}" novalidate>')
    parts.append(f'<input type="hidden" name="_token" value="{escape(token)}">')
    parts.append("<p>Fields marked * are required.</p>")
    parts += [_field(f, values.get(f.name, ""), errors.get(f.name)) for f in spec.fields]
    # A field people never see; bots that fill in everything give themselves away.
    parts.append(f'<div class="hp" aria-hidden="true"><label for="field-{escape(honeypot)}">'
                 f"Leave this empty</label><input type=\"text\" id=\"field-{escape(honeypot)}\" "
                 f'name="{escape(honeypot)}" tabindex="-1" autocomplete="off" value=""></div>')
    parts.append('<button type="submit">Send</button></form>')
    return _page(spec.title, "".join(parts))


def render_thanks(spec: FormSpec, reference: str) -> str:
    body = (f'<h1 id="thanks">Thank you</h1><p role="status">We have received your form '
            f"“{escape(spec.title)}”. Your reference is <strong>{escape(reference)}</strong>.</p>")
    return _page(f"Thank you — {spec.title}", body)


def render_page(title: str, body: str) -> str:
    """A page in the forms' accessible style around ``body`` (HTML the caller escaped)."""
    return _page(title, body)


def render_problem(title: str, message: str) -> str:
    return _page(title, f'<h1>{escape(title)}</h1><p role="alert">{escape(message)}</p>')
