"""What extraction produces: pages of text with headings, and the reader interface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Page:
    """One page of text (``number`` is 1-based; None for formats without pages)."""

    number: int | None
    text: str
    # (character offset in ``text``, heading) in order; a heading holds until the next one.
    headings: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ExtractedDoc:
    path: str
    name: str
    kind: str  # pdf | docx | text | markdown | html | csv | code
    pages: list[Page]

    @property
    def n_chars(self) -> int:
        return sum(len(p.text) for p in self.pages)


class Extraction:
    """An opened document whose pages can be read one at a time (PDFs are read lazily)."""

    def __init__(self, path: str, name: str, kind: str, n_pages: int | None) -> None:
        self.path = path
        self.name = name
        self.kind = kind
        self.n_pages = n_pages

    def iter_pages(self) -> Iterator[Page]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader holds; safe to call twice."""

    def __enter__(self) -> "Extraction":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ListExtraction(Extraction):
    def __init__(self, path: str, name: str, kind: str, pages: list[Page]) -> None:
        super().__init__(path, name, kind, len(pages))
        self._pages = pages

    def iter_pages(self) -> Iterator[Page]:
        yield from self._pages


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_TRAILING_WS_RE = re.compile(r"[ \t]+\n")
_BLANK_RUNS_RE = re.compile(r"\n{3,}")


_SLICE = 1 << 18


def _normalize_slice(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _CONTROL_RE.sub("", text)
    text = _TRAILING_WS_RE.sub("\n", text)
    return _BLANK_RUNS_RE.sub("\n\n", text)


def normalize(text: str) -> str:
    """One newline convention, no control characters, no trailing spaces or long blank runs."""
    if len(text) <= _SLICE:
        return _normalize_slice(text).rstrip().lstrip("\n")
    # A regex over a whole large file would hold the GIL (and stall the GUI thread)
    # for seconds; slices cut after a newline give other threads a turn in between.
    parts: list[str] = []
    tail = 0  # newlines at the end of what is kept so far
    start = 0
    while start < len(text):
        end = text.find("\n", start + _SLICE)
        end = len(text) if end == -1 else end + 1
        part = _normalize_slice(text[start:end])
        # A blank run that straddles a cut: keep at most two newlines in a row.
        leading = len(part) - len(part.lstrip("\n"))
        allowed = max(0, 2 - tail)
        if leading > allowed:
            part = part[leading - allowed:]
        stripped = part.rstrip("\n")
        tail = tail + len(part) if not stripped else len(part) - len(stripped)
        parts.append(part)
        start = end
    return "".join(parts).rstrip().lstrip("\n")
