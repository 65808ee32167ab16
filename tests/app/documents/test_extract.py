"""Extraction: every supported format keeps its text, pages and headings; every
bad input gets a clear error naming the file and what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.documents import extract as ex
from app.documents.errors import (
    CorruptDocument, DocumentTooLarge, EmptyDocument, NoTextFound, PasswordRequired, UnreadableDocument,
    UnsupportedDocument,
)
from app.documents.extract import expand_paths, extract
from tests.support.pdfgen import PdfPage, write_pdf
from app.errors import DocumentError
from tests.app.documents.helpers import RC4Encryption, write_docx

# ---- formats ------------------------------------------------------------------


def test_pdf_pages_and_outline_headings(docs: Path) -> None:
    pdf = write_pdf(docs / "report.pdf", [
        "Quarterly report (draft).\nRevenue rose in all regions.",
        "Costs were flat; staff grew by 4%.",
        "Outlook: hiring slows in Q3.",
    ], outline=[("Summary", 1), ("Outlook", 3)])
    doc = extract(pdf)
    assert doc.kind == "pdf" and doc.name == "report.pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "Revenue rose in all regions." in doc.pages[0].text
    assert "Quarterly report (draft)." in doc.pages[0].text  # parentheses survive the round trip
    assert "staff grew by 4%" in doc.pages[1].text
    assert doc.pages[0].headings == [(0, "Summary")] and doc.pages[2].headings == [(0, "Outlook")]


def test_docx_headings_tables_and_page_breaks(docs: Path) -> None:
    path = write_docx(docs / "handbook.docx", [
        ("h1", "Welcome"), ("p", "Doors open at eight."), ("break", ""),
        ("h1", "Holidays"), ("p", "Staff get 25 days of leave."),
    ])
    import docx

    d = docx.Document(str(path))
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Room", "Capacity"
    table.cell(1, 0).text, table.cell(1, 1).text = "Atrium", "120"
    d.save(str(path))
    doc = extract(path)
    assert doc.kind == "docx"
    assert [p.number for p in doc.pages] == [1, 2]
    assert "Doors open at eight." in doc.pages[0].text
    assert "25 days of leave" in doc.pages[1].text
    assert "Atrium | 120" in doc.pages[1].text
    assert doc.pages[0].headings[0][1] == "Welcome"
    offset, title = doc.pages[1].headings[0]
    assert title == "Holidays" and doc.pages[1].text[offset:].startswith("Holidays")


def test_docx_without_page_breaks_has_no_page_numbers(docs: Path) -> None:
    doc = extract(write_docx(docs / "memo.docx", [("h2", "Memo"), ("p", "Lunch is at noon.")]))
    assert [p.number for p in doc.pages] == [None]
    assert "Lunch is at noon." in doc.pages[0].text


def test_html_text_headings_entities_and_no_scripts(docs: Path) -> None:
    page = docs / "page.html"
    page.write_bytes(
        b"<html><head><meta charset='windows-1252'><title>Guide</title><style>p{color:red}</style>"
        b"<script>var secret = 'do not index';</script></head><body>"
        b"<h1>Install</h1><p>Run the installer &amp; restart.</p><p>Caf\xe9 opens at 9.</p>"
        b"<h2>Uninstall</h2><ul><li>Open settings</li><li>Remove</li></ul>"
        b"<table><tr><td>a</td><td>b</td></tr></table></body></html>"
    )
    doc = extract(page)
    text = doc.pages[0].text
    assert "Run the installer & restart." in text
    assert "Café opens at 9." in text  # the declared encoding, not UTF-8
    assert "do not index" not in text and "color:red" not in text
    assert [h for _, h in doc.pages[0].headings] == ["Install", "Uninstall"]
    assert "Open settings\nRemove" in text and "a | b" in text


def test_markdown_headings_ignore_code_fences(docs: Path) -> None:
    md = docs / "notes.md"
    md.write_text("# Setup\n\nInstall it.\n\n```sh\n# not a heading\n```\n\nUsage\n-----\n\nRun it.\n")
    doc = extract(md)
    assert doc.kind == "markdown"
    assert [h for _, h in doc.pages[0].headings] == ["Setup", "Usage"]
    for offset, title in doc.pages[0].headings:
        assert doc.pages[0].text[offset:].lstrip("# ").startswith(title)


@pytest.mark.parametrize("name, body, kind", [
    ("data.csv", "city,population\nLyon,522000\nNantes,320000\n", "csv"),
    ("tool.py", "def add(a, b):\n    return a + b  # <|end|> stays text\n", "code"),
    ("main.rs", "fn main() { println!(\"hi\"); }\n", "code"),
    ("Makefile", "all:\n\tcc main.c\n", "code"),
    ("README", "Plain words with no extension.\n", "text"),
    ("notes.txt", "Plain text notes.\n", "text"),
])
def test_text_like_files(docs: Path, name: str, body: str, kind: str) -> None:
    f = docs / name
    f.write_text(body, encoding="utf-8")
    doc = extract(f)
    assert doc.kind == kind
    assert doc.pages[0].number is None
    assert doc.pages[0].text == body.rstrip()


def test_text_encodings(docs: Path) -> None:
    (docs / "utf16.txt").write_bytes("Prix : 12 €, déjà payé".encode("utf-16"))
    assert extract(docs / "utf16.txt").pages[0].text == "Prix : 12 €, déjà payé"
    (docs / "legacy.txt").write_bytes("Prix : 12 €, déjà payé".encode("cp1252"))
    assert extract(docs / "legacy.txt").pages[0].text == "Prix : 12 €, déjà payé"
    (docs / "crlf.txt").write_bytes(b"one\r\ntwo\r\n\r\n\r\n\r\nthree   \r\n")
    assert extract(docs / "crlf.txt").pages[0].text == "one\ntwo\n\nthree"


# ---- bad input -----------------------------------------------------------------


def test_encrypted_pdf_asks_for_the_password(docs: Path) -> None:
    pdf = write_pdf(docs / "secret.pdf", ["The merger closes in May."], encryption=RC4Encryption("hunter2"))
    with pytest.raises(PasswordRequired) as info:
        extract(pdf)
    assert "secret.pdf" in str(info.value) and "password" in str(info.value)
    assert not info.value.wrong_password
    with pytest.raises(PasswordRequired) as info:
        extract(pdf, password="guess")
    assert info.value.wrong_password and "not correct" in str(info.value)
    assert "The merger closes in May." in extract(pdf, password="hunter2").pages[0].text


def test_scanned_pdf_says_no_text_and_no_ocr(docs: Path) -> None:
    pdf = write_pdf(docs / "scan.pdf", [PdfPage(image=True), PdfPage(image=True)])
    with pytest.raises(NoTextFound) as info:
        extract(pdf)
    msg = str(info.value)
    assert "No text was found in scan.pdf" in msg and "OCR is not available" in msg and "2 pages" in msg


def test_binary_renamed_pdf(docs: Path) -> None:
    fake = docs / "invoice.pdf"
    fake.write_bytes(b"MZ\x90\x00" + os.urandom(4000))
    with pytest.raises(CorruptDocument, match=r"invoice\.pdf is not a PDF.*renamed"):
        extract(fake)


def test_damaged_pdf(docs: Path) -> None:
    good = write_pdf(docs / "good.pdf", ["Some text."]).read_bytes()
    broken = docs / "broken.pdf"
    broken.write_bytes(good[:60] + b"\x00garbage" * 20)
    with pytest.raises(CorruptDocument, match=r"broken\.pdf is damaged"):
        extract(broken)


def test_empty_file(docs: Path) -> None:
    (docs / "empty.pdf").write_bytes(b"")
    with pytest.raises(EmptyDocument, match=r"empty\.pdf is empty \(0 bytes\)"):
        extract(docs / "empty.pdf")
    (docs / "blank.txt").write_text("\n\n   \n")
    with pytest.raises(NoTextFound, match=r"No text was found in blank\.txt"):
        extract(docs / "blank.txt")


def test_file_over_the_size_limit(docs: Path) -> None:
    big = docs / "huge.txt"
    with open(big, "wb") as f:  # sparse: no disk used
        f.truncate(ex.MAX_FILE_BYTES + 1)
    with pytest.raises(DocumentTooLarge) as info:
        extract(big)
    assert "huge.txt" in str(info.value) and "200 MB limit" in str(info.value)
    assert info.value.limit == ex.MAX_FILE_BYTES


@pytest.mark.parametrize("name, data, words", [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image"),
    ("scan.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100, "image"),
    ("sheet.xlsx", b"PK\x03\x04" + b"\x00" * 100, "Save the sheet as CSV"),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".docx"),
    ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "password"),
    ("program.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 4, "not supported"),
    ("data.bin", bytes(range(256)) * 8, "not supported"),
    ("notes.txt", b"text\x00with\x00nul bytes" * 10, "binary"),
])
def test_unsupported_types(docs: Path, name: str, data: bytes, words: str) -> None:
    f = docs / name
    f.write_bytes(data)
    with pytest.raises(UnsupportedDocument) as info:
        extract(f)
    assert name in str(info.value) and words in str(info.value)


def test_not_a_docx(docs: Path) -> None:
    (docs / "report.docx").write_text("just text")
    with pytest.raises(CorruptDocument, match=r"report\.docx is not a Word \.docx file"):
        extract(docs / "report.docx")
    (docs / "zip.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    with pytest.raises(CorruptDocument, match=r"zip\.docx is damaged"):
        extract(docs / "zip.docx")


def test_unreadable_files(docs: Path) -> None:
    with pytest.raises(UnreadableDocument, match=r"gone\.pdf cannot be found"):
        extract(docs / "gone.pdf")
    (docs / "folder.txt").mkdir()
    with pytest.raises(UnreadableDocument, match="is a folder"):
        extract(docs / "folder.txt")
    (docs / "dangling.md").symlink_to(docs / "nowhere.md")
    with pytest.raises(UnreadableDocument, match="cannot be found"):
        extract(docs / "dangling.md")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(docs: Path) -> None:
    f = docs / "private.txt"
    f.write_text("secret")
    f.chmod(0)
    try:
        with pytest.raises(UnreadableDocument, match="permission denied"):
            extract(f)
    finally:
        f.chmod(0o600)


def test_every_error_is_a_document_error(docs: Path) -> None:
    (docs / "x.pdf").write_bytes(b"")
    with pytest.raises(DocumentError):
        extract(docs / "x.pdf")


def test_expand_paths_walks_folders(docs: Path) -> None:
    (docs / "a.pdf").write_bytes(b"%PDF-1.4")
    sub = docs / "sub"
    sub.mkdir()
    (sub / "b.md").write_text("x")
    (sub / "photo.png").write_bytes(b"\x89PNG")
    (sub / ".hidden.txt").write_text("x")
    (docs / ".git").mkdir()
    (docs / ".git" / "config").write_text("x")
    files, skipped = expand_paths([docs, docs / "explicit.png"])
    assert [f.name for f in files] == ["a.pdf", "b.md", "explicit.png"]
    assert {f.name for f in skipped} == {"photo.png", ".hidden.txt"}


def test_docx_pages_follow_words_last_layout(docs: Path) -> None:
    """Word records where its layout broke pages; those are the pages the user saw."""
    from docx.oxml import OxmlElement

    path = write_docx(docs / "thesis.docx", [("h1", "Abstract"), ("p", "We study moths."),
                                             ("p", "Moths like lamps."), ("h1", "Method"), ("p", "Lamps at night."),
                                             ("p", "Counting moths.")])
    import docx

    d = docx.Document(str(path))
    for i in (2, 5):  # Word's layout began new pages at these paragraphs
        run = d.paragraphs[i].runs[0]._r
        run.insert(0, OxmlElement("w:lastRenderedPageBreak"))
    d.save(str(path))
    pages = extract(path).pages
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[0].text == "Abstract\nWe study moths."
    assert pages[1].text.startswith("Moths like lamps.") and pages[2].text == "Counting moths."
    assert pages[1].headings == [(len("Moths like lamps.\n"), "Method")]
