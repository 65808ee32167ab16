"""Readable text and headings from HTML with the standard library's parser."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from app.documents.pages import Page, normalize

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object"})
_BLOCK = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "ul", "ol", "li", "dl", "dt",
    "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "figure", "figcaption", "form",
    "fieldset", "address", "details", "summary", "hr", "br", "caption", "body", "html",
    "h1", "h2", "h3", "h4", "h5", "h6", "title",
})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source",
                   "track", "wbr", "param"})
_WS_RE = re.compile(r"[ \t\r\n\f\v]+")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, bool]] = []  # (text, is_heading)
        self._buf: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._heading_depth = 0
        self._title: list[str] = []
        self._in_title = False

    def _flush(self) -> None:
        text = "".join(self._buf)
        self._buf = []
        if self._pre_depth == 0:
            text = _WS_RE.sub(" ", text)
        if text.strip():
            if self._pre_depth == 0:
                text = text.strip(" ").removeprefix("| ")
            self.blocks.append((text, self._heading_depth > 0))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _SKIP and tag not in _VOID:
            self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag in _BLOCK:
            self._flush()
        if tag in ("td", "th"):
            self._buf.append(" | ")
        if tag == "pre":
            self._pre_depth += 1
        if tag in _HEADINGS:
            self._heading_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP and tag not in _VOID:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag in _BLOCK:
            self._flush()
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag in _HEADINGS:
            self._heading_depth = max(0, self._heading_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif not self._skip_depth:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    @property
    def title(self) -> str:
        return " ".join("".join(self._title).split())


_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def declared_charset(head: bytes) -> str | None:
    """The encoding an HTML file declares in a <meta> tag, if Python knows it."""
    m = _META_CHARSET_RE.search(head[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii", "replace")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def html_to_page(html: str) -> Page:
    """One page (HTML has no pages) whose headings are the h1-h6 elements."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    parts: list[str] = []
    headings: list[tuple[int, str]] = []
    length = 0
    blocks = parser.blocks
    if parser.title and not any(h for _, h in blocks):
        # A page with a <title> but no h1: the title is the best heading there is.
        headings.append((0, parser.title))
    for text, is_heading in blocks:
        text = normalize(text.strip("\n"))
        if not text.strip():
            continue
        if parts:
            parts.append("\n")
            length += 1
        if is_heading:
            headings.append((length, " ".join(text.split())))
        parts.append(text)
        length += len(text)
    return Page(None, "".join(parts), headings)
