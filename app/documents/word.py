"""Word .docx text through python-docx (MIT): paragraphs, tables, headings, page breaks.

A .docx has no fixed pages; Word records where its last layout broke pages
(``w:lastRenderedPageBreak``), which is what the user saw, so those give page
numbers. Without them, hard page breaks are used; with neither, pages are
unknown (None) and citations name the heading instead.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path
from typing import Any

import docx
from docx.opc.exceptions import OpcError
from docx.oxml.ns import qn
from lxml import etree

from app.documents.errors import CorruptDocument, DocumentTooLarge, unreadable
from app.documents.pages import Page, normalize

log = logging.getLogger(__name__)

# A .docx is a zip: a small file can inflate to gigabytes (zip bomb). Both limits
# count the bytes that really come out, never the sizes the zip declares.
MAX_UNPACKED_BYTES = 400 * 1024 * 1024  # every member, media included
# XML becomes an lxml tree and python-docx objects ~8x its size (measured on
# a file of short paragraphs), so it has its own, lower limit: a few hundred MB
# of memory at most. Real documents have a few MB of XML.
MAX_XML_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20
# What a damaged or hostile zip raises while a member is read: bad headers and
# CRCs, broken deflate streams, encrypted or unknown compression methods.
_ZIP_ERRORS: tuple[type[Exception], ...] = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError,
                                             NotImplementedError, RuntimeError, EOFError, zlib.error)
try:  # an optional part of CPython builds
    from lzma import LZMAError
    _ZIP_ERRORS += (LZMAError,)
except ImportError:
    pass

_P, _TBL, _TR, _TC, _SDT, _SDT_CONTENT = (qn("w:p"), qn("w:tbl"), qn("w:tr"), qn("w:tc"), qn("w:sdt"),
                                           qn("w:sdtContent"))
_T, _TAB, _BR, _CR, _RENDERED = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr"), qn("w:lastRenderedPageBreak")
_PPR, _PSTYLE, _OUTLINE, _VAL, _TYPE = qn("w:pPr"), qn("w:pStyle"), qn("w:outlineLvl"), qn("w:val"), qn("w:type")
_PAGE_BREAK = "\x00PAGE\x00"  # marker inside collected text; control chars never survive normalize()


class _PageBuilder:
    def __init__(self) -> None:
        self.pages: list[Page] = []
        self._parts: list[str] = []
        self._len = 0
        self._headings: list[tuple[int, str]] = []
        self.number = 1

    def add(self, text: str, heading: bool = False) -> None:
        text = normalize(text)
        if not text.strip():
            return
        if self._parts:
            self._parts.append("\n")
            self._len += 1
        if heading:
            self._headings.append((self._len, " ".join(text.split())))
        self._parts.append(text)
        self._len += len(text)

    def break_page(self) -> None:
        self.pages.append(Page(self.number, "".join(self._parts), self._headings))
        self._parts, self._len, self._headings = [], 0, []
        self.number += 1

    def finish(self, numbered: bool) -> list[Page]:
        self.break_page()
        if not numbered:
            return [Page(None, p.text, p.headings) for p in self.pages]
        return self.pages


def read_docx(path: Path) -> list[Page]:
    name = path.name
    damaged = (f"{name} is damaged or not a valid Word .docx file, so it cannot be read. Try opening it in "
               "Word or LibreOffice and saving a new copy.")
    try:
        with zipfile.ZipFile(path) as z:
            _check_unpacked_size(path, z)
    except OSError as exc:
        raise unreadable(path, exc) from exc
    except _ZIP_ERRORS as exc:
        raise CorruptDocument(damaged, str(path)) from exc
    try:
        document = docx.Document(str(path))
        styles = {s.style_id: (s.name or "") for s in document.styles}
        body = document.element.body
    except OSError as exc:
        raise unreadable(path, exc) from exc
    except (OpcError, KeyError, ValueError, zipfile.BadZipFile, etree.XMLSyntaxError) as exc:
        raise CorruptDocument(damaged, str(path)) from exc
    rendered = next(body.iter(_RENDERED), None) is not None
    hard = any(br.get(_TYPE) == "page" for br in body.iter(_BR))
    builder = _PageBuilder()
    _walk(body, builder, styles, rendered)
    return builder.finish(numbered=rendered or hard)


def _looks_like_xml(head: bytes) -> bool:
    # By content, not by name: [Content_Types].xml can give any part name an XML type.
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"<", b"\xff\xfe", b"\xfe\xff"))


def _check_unpacked_size(path: Path, z: zipfile.ZipFile) -> None:
    """Unpack every member once, counting the bytes that really come out.

    The sizes in a zip's directory are the file's own claim, and python-docx
    reads parts from anywhere in the archive (``_rels/``, ``[Content_Types].xml``,
    parts named by relationships), so every member counts and only real output
    is trusted. Reading stops as soon as a limit is passed.
    """
    total = xml = 0
    for info in z.infolist():
        if info.is_dir():
            continue
        with z.open(info) as member:
            first = True
            is_xml = False
            while chunk := member.read(_CHUNK):
                if first:
                    is_xml, first = _looks_like_xml(chunk[:64]), False
                total += len(chunk)
                xml += len(chunk) if is_xml else 0
                if total > MAX_UNPACKED_BYTES or xml > MAX_XML_BYTES:
                    limit = MAX_UNPACKED_BYTES if total > MAX_UNPACKED_BYTES else MAX_XML_BYTES
                    what = "in all" if limit == MAX_UNPACKED_BYTES else "of text and layout (XML)"
                    raise DocumentTooLarge(
                        f"{path.name} unpacks to more than {limit >> 20} MB {what}, over Hearth's limit for "
                        "a Word document. Split it into smaller documents, or save it again from Word.",
                        str(path), size=total if limit == MAX_UNPACKED_BYTES else xml, limit=limit)


def _walk(parent: Any, builder: _PageBuilder, styles: dict[str, str], rendered: bool) -> None:
    for el in parent.iterchildren():
        if el.tag == _P:
            _paragraph(el, builder, styles, rendered)
        elif el.tag == _TBL:
            _table(el, builder, rendered)
        elif el.tag in (_SDT, _SDT_CONTENT):
            _walk(el, builder, styles, rendered)


def _is_heading(p: Any, styles: dict[str, str]) -> bool:
    ppr = p.find(_PPR)
    if ppr is None:
        return False
    if ppr.find(_OUTLINE) is not None:
        return True
    pstyle = ppr.find(_PSTYLE)
    if pstyle is None:
        return False
    style = styles.get(pstyle.get(_VAL) or "", pstyle.get(_VAL) or "").lower()
    return style.startswith("heading") or style == "title"


def _runs_text(el: Any, rendered: bool) -> str:
    """Text of an element in document order, with page-break markers where a page ends."""
    out: list[str] = []
    for node in el.iter(_T, _TAB, _BR, _CR, _RENDERED):
        tag = node.tag
        if tag == _T:
            out.append(node.text or "")
        elif tag == _TAB:
            out.append("\t")
        elif tag == _RENDERED:
            if rendered:
                out.append(_PAGE_BREAK)
        elif tag == _BR and node.get(_TYPE) == "page":
            # With rendered breaks present they already mark this break.
            if not rendered:
                out.append(_PAGE_BREAK)
        else:
            out.append("\n")
    return "".join(out)


def _paragraph(p: Any, builder: _PageBuilder, styles: dict[str, str], rendered: bool) -> None:
    heading = _is_heading(p, styles)
    pieces = _runs_text(p, rendered).split(_PAGE_BREAK)
    for i, piece in enumerate(pieces):
        if i:
            builder.break_page()
        builder.add(piece, heading=heading)


def _table(tbl: Any, builder: _PageBuilder, rendered: bool) -> None:
    for tr in tbl.iter(_TR):
        cells = []
        broke = False
        for tc in tr.iterchildren(_TC):
            text = _runs_text(tc, rendered)
            if _PAGE_BREAK in text:
                broke = True
                text = text.replace(_PAGE_BREAK, "")
            cells.append(" ".join(text.split()))
        if broke:
            builder.break_page()
        if any(cells):
            builder.add(" | ".join(cells))
