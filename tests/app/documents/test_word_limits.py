"""Hostile .docx files: the unpack limits count real bytes, whatever the zip claims and wherever a part lives."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from app.documents import word
from app.documents.errors import CorruptDocument, DocumentTooLarge
from app.documents.extract import extract

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOC_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"


def _content_types(main: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/{main}" ContentType="{DOC_TYPE}"/></Types>')


def _rels(main: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{OFFICE_DOC}" Target="{main}"/></Relationships>')


def _document(paragraphs: int) -> str:
    body = "<w:p><w:r><w:t>Hello hearth.</w:t></w:r></w:p>" * paragraphs
    return f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'


def write_docx(path: Path, *, main: str = "word/document.xml", paragraphs: int = 1) -> Path:
    """A minimal .docx written member by member; ``main`` may put the document outside word/."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _content_types(main))
        z.writestr("_rels/.rels", _rels(main))
        z.writestr(main, _document(paragraphs))
    return path


def test_minimal_docx_reads(tmp_path: Path) -> None:
    doc = extract(write_docx(tmp_path / "ok.docx", paragraphs=3))
    assert "Hello hearth." in "".join(p.text for p in doc.pages)


def test_document_outside_word_folder_still_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ~2.3 MB of XML in a ~10 KB file, stored where a check of word/* alone never looked.
    path = write_docx(tmp_path / "elsewhere.docx", main="evil/main.xml", paragraphs=50_000)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(word, "MAX_XML_BYTES", 1 << 20)
    with pytest.raises(DocumentTooLarge) as err:
        extract(path)
    assert "elsewhere.docx" in str(err.value) and "1 MB" in str(err.value)
    assert err.value.limit == 1 << 20


def test_declared_sizes_are_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every size field (local header and central directory) says 100 bytes; the deflate
    # stream holds ~2.3 MB. Whatever zipfile makes of it, no limit is passed and no
    # traceback escapes: the file is refused by name.
    path = write_docx(tmp_path / "liar.docx", paragraphs=50_000)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("word/document.xml")
        real = info.file_size
    local = info.header_offset
    struct.pack_into("<I", raw, local + 22, 100)  # local header: uncompressed size
    for off in _central_entries(bytes(raw)):
        name_len = struct.unpack_from("<H", raw, off + 28)[0]
        if bytes(raw[off + 46:off + 46 + name_len]) == b"word/document.xml":
            struct.pack_into("<I", raw, off + 24, 100)  # central directory: uncompressed size
    path.write_bytes(bytes(raw))
    assert real > 2_000_000
    monkeypatch.setattr(word, "MAX_XML_BYTES", 1 << 20)
    with pytest.raises((CorruptDocument, DocumentTooLarge), match="liar.docx"):
        extract(path)


def _central_entries(raw: bytes) -> list[int]:
    out, off = [], raw.find(b"PK\x01\x02")
    while off != -1:
        out.append(off)
        off = raw.find(b"PK\x01\x02", off + 4)
    return out


def test_total_limit_counts_media_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_docx(tmp_path / "media.docx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/media/image1.png", b"\x89PNG" + b"\0" * 3_000_000)
    monkeypatch.setattr(word, "MAX_UNPACKED_BYTES", 2 << 20)
    with pytest.raises(DocumentTooLarge, match=r"media.docx unpacks to more than 2 MB in all"):
        extract(path)


def test_broken_deflate_stream_is_corrupt_not_a_traceback(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "broken.docx", paragraphs=2000)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptDocument, match="broken.docx is damaged"):
        extract(path)
