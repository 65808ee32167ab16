"""Markdown to Qt rich text, split into prose and code blocks.

Code blocks become their own widgets (with a copy button), so the renderer
returns a list of blocks rather than one HTML string.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound


@dataclass(frozen=True)
class Block:
    kind: str  # "html" | "code"
    html: str
    code: str = ""
    language: str = ""


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table").enable(
        "strikethrough"
    )


_TABLE_STYLE = (
    "<style>table{border-collapse:collapse;margin:4px 0}"
    "td,th{border:1px solid #999999;padding:3px 8px}th{font-weight:600}"
    "code{font-family:monospace;background-color:rgba(127,127,127,0.15)}"
    "p{margin:0 0 6px 0}</style>"
)


@lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    """One lexer per language, made once (finding and building one takes milliseconds)."""
    try:
        return get_lexer_by_name(language)
    except ClassNotFound:
        return TextLexer()


@lru_cache(maxsize=2)
def _formatter(style: str) -> HtmlFormatter:
    return HtmlFormatter(noclasses=True, nowrap=True, style=style)


def highlight_code(code: str, language: str, dark: bool = False) -> str:
    if language:
        lexer = _lexer(language.lower())
    else:
        try:
            lexer = guess_lexer(code)
        except ClassNotFound:
            lexer = TextLexer()
    body = highlight(code, lexer, _formatter("monokai" if dark else "friendly"))
    return f'<pre style="margin:0;font-family:monospace;white-space:pre-wrap">{body}</pre>'


def render_blocks(text: str, *, dark: bool = False) -> list[Block]:
    """Split Markdown into HTML prose blocks and highlighted code blocks."""
    md = _md()
    tokens = md.parse(text)
    blocks: list[Block] = []
    pending: list = []
    # One block per top-level Markdown block (paragraph, list, table, heading…): while a
    # reply streams only its last block changes, so only that widget is laid out again.
    for tok in tokens:
        if tok.type in ("fence", "code_block") and tok.level == 0:
            lang = (tok.info or "").strip().split(" ")[0]
            blocks.append(Block("code", highlight_code(tok.content.rstrip("\n"), lang, dark), tok.content, lang))
            continue
        pending.append(tok)
        if tok.level == 0 and tok.nesting <= 0:  # a top-level block just closed
            blocks.append(Block("html", _TABLE_STYLE + md.renderer.render(pending, md.options, {})))
            pending = []
    if pending:
        blocks.append(Block("html", _TABLE_STYLE + md.renderer.render(pending, md.options, {})))
    return blocks


PROSE_CHUNK = 8  # prose blocks per widget in a long reply


def merge_prose(blocks: list[Block]) -> list[Block]:
    """Join runs of prose blocks into widgets of up to PROSE_CHUNK blocks; the last block of
    the message stays on its own.

    A long reply is then a dozen widgets instead of one per paragraph, and while it streams
    only the last one changes (plus, when a paragraph ends, the newest chunk): each frame
    lays out a few small widgets, never the whole reply's text.
    """
    out: list[Block] = []
    count = 0  # prose blocks in out[-1]
    for i, b in enumerate(blocks):
        last = i == len(blocks) - 1
        if (b.kind == "html" and not last and out and out[-1].kind == "html"
                and out[-1].code != "tail" and count < PROSE_CHUNK):
            out[-1] = Block("html", out[-1].html + b.html.removeprefix(_TABLE_STYLE))
            count += 1
        else:
            # ``code`` marks the final prose block, so the next block never joins it
            out.append(Block(b.kind, b.html, "tail" if (last and b.kind == "html") else b.code, b.language))
            count = 1
    return out


def plain_html(text: str) -> str:
    """User text shown as typed (no Markdown interpretation)."""
    return html.escape(text).replace("\n", "<br>")
