"""Chunks and queries: exact offsets, whole pages back from chunks, sensible MATCH queries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.documents.chunking import chunk_page, chunk_pages, stitch
from app.documents.pages import Page, normalize
from app.documents.retrieval import fts_query, query_terms

_words = st.sampled_from(["alpha", "beta.", "gamma,", "delta?", "x" * 40, "\n", "\n\n", "  ", "é", "1.5"])


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(_words, max_size=600), st.integers(40, 400), st.integers(0, 60))
def test_chunks_are_exact_slices_and_stitch_back(words: list[str], size: int, overlap: int) -> None:
    text = normalize(" ".join(words))
    chunks, _ = chunk_page(Page(3, text), size=size, overlap=overlap)
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.page == 3 and c.text.strip()
        assert len(c.text) <= size * 1.2 + overlap + 1
    back = stitch((c.start, c.end, c.text) for c in chunks)
    # Same text; only stretches of whitespace that made no chunk become spaces.
    assert len(back) == len(text.rstrip())
    assert [(i, ch) for i, ch in enumerate(back) if not ch.isspace()] == \
           [(i, ch) for i, ch in enumerate(text.rstrip()) if not ch.isspace()]


def test_chunks_overlap_on_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(600))
    chunks, _ = chunk_page(Page(1, text), size=300, overlap=60)
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # overlap: a sentence cut at the boundary is whole in one of them
        assert text[b.start - 1] == " "  # starts on a word


def test_headings_carry_across_pages() -> None:
    pages = [Page(1, "Intro text.\n" + "a " * 600, [(0, "Intro")]),
             Page(2, "more text " * 100),
             Page(3, "Before.\nResults here " * 60, [(8, "Results")])]
    chunks = list(chunk_pages(pages, size=400))
    assert {c.heading for c in chunks if c.page in (1, 2)} == {"Intro"}
    p3 = [c for c in chunks if c.page == 3]
    assert p3[0].heading == "Intro" and p3[-1].heading == "Results"


def test_query_terms() -> None:
    assert query_terms("What is the notice period for the lease?") == ["notice", "period", "lease"]
    assert query_terms("torque for step 17.4, wi-fi") == ["torque", "step", "17 4", "17", "4", "wi fi", "wi", "fi"]
    assert query_terms("Was ist das Kündigungsrecht?")[-1] == "kündigungsrecht"
    assert fts_query(["a\"b", "c"]) == '"ab" OR "c"'
    assert fts_query(query_terms("is it?")) is None
