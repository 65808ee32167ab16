"""Pages cut into overlapping passages that keep their page, heading and exact offsets.

A chunk never crosses a page, so its citation page is exact, and its text is
exactly ``page.text[start:end]`` (surrounding whitespace included), so a preview
can highlight it in the page and the page can be stitched back from its chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.documents.pages import Page

CHUNK_CHARS = 1000
OVERLAP_CHARS = 150
# Break points tried in order; each must leave at least half a chunk behind it.
_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


@dataclass(frozen=True)
class Chunk:
    page: int | None
    start: int
    end: int
    heading: str | None
    text: str


def _cut(text: str, pos: int, size: int) -> int:
    """Where the chunk that starts at ``pos`` should end."""
    n = len(text)
    if n - pos <= size * 1.2:
        return n  # no tiny tail chunk
    window = text[pos: pos + size]
    for sep in _BREAKS:
        i = window.rfind(sep)
        if i >= size // 2:
            return pos + i + len(sep)
    return pos + size


def _heading_at(headings: list[tuple[int, str]], offset: int, before: str | None) -> str | None:
    current = before
    for at, title in headings:
        if at > offset:
            break
        current = title
    return current


def chunk_page(page: Page, heading_before: str | None = None, *, size: int = CHUNK_CHARS,
               overlap: int = OVERLAP_CHARS) -> tuple[list[Chunk], str | None]:
    """Chunks of one page, and the heading in force at its end (it carries to the next page)."""
    text = page.text
    out: list[Chunk] = []
    pos = 0
    n = len(text)
    while pos < n:
        end = _cut(text, pos, size)
        start = pos
        if out and overlap:
            # Reach back so a sentence cut at the boundary is whole in one of the two chunks,
            # starting on a word.
            back = max(0, pos - overlap)
            space = text.find(" ", back, pos)
            nl = text.find("\n", back, pos)
            cands = [i for i in (space, nl) if i != -1]
            start = min(cands) + 1 if cands else pos
        # Chunks tile the page exactly (whitespace kept) so offsets survive stitching.
        if text[start:end].strip():
            out.append(Chunk(page.number, start, end, _heading_at(page.headings, pos, heading_before),
                             text[start:end]))
        pos = end
    return out, _heading_at(page.headings, n, heading_before)


def chunk_pages(pages: Iterable[Page], *, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> Iterator[Chunk]:
    heading: str | None = None
    for page in pages:
        chunks, heading = chunk_page(page, heading, size=size, overlap=overlap)
        yield from chunks


def stitch(pieces: Iterable[tuple[int, int, str]]) -> str:
    """A page's text again from its chunks' (start, end, text), overlaps removed."""
    out: list[str] = []
    covered = 0
    for start, end, text in pieces:
        if end <= covered:
            continue
        if start >= covered:
            # A gap is a stretch of whitespace that made no chunk; spaces keep the offsets.
            out.append(" " * (start - covered))
            out.append(text)
        else:
            out.append(text[covered - start:])
        covered = end
    return "".join(out)
