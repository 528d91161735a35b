"""Article Markdown as HTML that cannot run anything.

``markdown-it-py`` in CommonMark mode with raw HTML off: a ``<script>`` or an
``<img onerror=…>`` typed into an article is shown as text, never as markup. Links and
images pass an allow-list of schemes (``http``, ``https``, ``mailto`` and relative
links; images ``https`` and relative only), so ``javascript:``, ``vbscript:``, ``data:``
and ``file:`` links — also spelled with entities, upper case or control characters —
are not links at all. Every link gets ``rel="nofollow noopener noreferrer"``. The
served pages add a Content-Security-Policy without scripts as a second wall.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt

_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"https"})


def allowed(url: str, schemes: frozenset[str]) -> bool:
    """Whether ``url`` is relative or uses one of ``schemes`` (after dropping what a
    browser ignores: whitespace and control characters anywhere in it)."""
    bare = _INVISIBLE.sub("", url)
    found = _SCHEME.match(bare)
    if found is None:
        return ":" not in bare.split("/", 1)[0]  # "x:y" without a scheme shape: refused
    return found.group(1).lower() in schemes


def _link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return str(renderer.renderToken(tokens, idx, options, env))


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = lambda url: allowed(url, LINK_SCHEMES)  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.core.ruler.push("image_schemes", _drop_bad_images)
    return md


def _drop_bad_images(state: Any) -> None:
    """Images load without a click: only https (or same-site) sources stay images; any
    other becomes its alt text."""
    for block in state.tokens:
        for child in block.children or ():
            if child.type == "image" and not allowed(child.attrGet("src") or "", IMAGE_SCHEMES):
                child.type, child.tag = "text", ""
                child.content = "".join(c.content for c in child.children or ())
                child.children = None


def render(markdown: str) -> str:
    """The article's body as safe HTML."""
    return _parser().render(markdown)
