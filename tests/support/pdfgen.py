"""A minimal PDF writer for benchmarks and tests: Helvetica text pages, image-only
("scanned") pages, an outline, and a hook for encryption.

Hearth itself only reads PDFs; this exists so benchmarks and tests can make
real PDFs without Qt or another library. Writes PDF 1.4 with a classic xref table.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

LINE_CHARS = 90  # fits a Letter page at 11 pt Helvetica with 1-inch margins
LINES_PER_PAGE = 50


@dataclass
class PdfPage:
    text: str = ""
    image: bool = False  # an image and no text, like a scanned page


class PdfEncryption(Protocol):
    """What the writer needs from an encryption scheme (see tests for RC4)."""

    file_id: bytes

    def encrypt(self, obj_num: int, data: bytes) -> bytes: ...

    def dictionary(self) -> str: ...


def _escape(s: bytes) -> bytes:
    return s.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _lines(text: str) -> list[str]:
    out: list[str] = []
    for para in text.split("\n"):
        out.extend(textwrap.wrap(para, LINE_CHARS) or [""])
    return out


@dataclass
class _Writer:
    encryption: PdfEncryption | None
    objects: list[bytes] = field(default_factory=list)

    def reserve(self) -> int:
        self.objects.append(b"")
        return len(self.objects)

    def set(self, num: int, body: bytes) -> None:
        self.objects[num - 1] = body

    def add(self, body: bytes) -> int:
        num = self.reserve()
        self.set(num, body)
        return num

    def stream(self, num: int, data: bytes, extra: str = "") -> None:
        if self.encryption is not None:
            data = self.encryption.encrypt(num, data)
        self.set(num, f"<< /Length {len(data)} {extra}>>\nstream\n".encode() + data + b"\nendstream")

    def string(self, num: int, text: str) -> bytes:
        data = text.encode("latin-1", "replace")
        if self.encryption is not None:
            data = self.encryption.encrypt(num, data)
        return b"<" + data.hex().encode() + b">"


def write_pdf(path: str | os.PathLike[str], pages: Sequence[str | PdfPage], *,
              outline: Sequence[tuple[str, int]] = (), encryption: PdfEncryption | None = None) -> Path:
    """Write a PDF whose pages hold the given text (wrapped; Latin-1 characters only).

    ``outline``: (title, 1-based page) bookmarks, which readers show as headings.
    """
    w = _Writer(encryption)
    catalog = w.reserve()
    pages_num = w.reserve()
    font = w.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    page_nums: list[int] = []
    for item in pages:
        page = item if isinstance(item, PdfPage) else PdfPage(text=item)
        resources = f"/Font << /F1 {font} 0 R >>"
        if page.image:
            img = w.reserve()
            pixels = bytes((x * 7 + y * 13) % 256 for y in range(32) for x in range(32))
            w.stream(img, pixels, "/Type /XObject /Subtype /Image /Width 32 /Height 32 /ColorSpace /DeviceGray "
                                  "/BitsPerComponent 8 ")
            resources += f" /XObject << /Im1 {img} 0 R >>"
            content = b"q 468 0 0 600 72 100 cm /Im1 Do Q"
        else:
            ops = [b"BT /F1 11 Tf 14 TL 72 740 Td"]
            for line in _lines(page.text):
                ops.append(b"(" + _escape(line.encode("cp1252", "replace")) + b") Tj T*")
            ops.append(b"ET")
            content = b"\n".join(ops)
        cnum = w.reserve()
        w.stream(cnum, content)
        page_nums.append(w.add(
            f"<< /Type /Page /Parent {pages_num} 0 R /MediaBox [0 0 612 792] /Resources << {resources} >> "
            f"/Contents {cnum} 0 R >>".encode()))
    kids = " ".join(f"{n} 0 R" for n in page_nums)
    w.set(pages_num, f"<< /Type /Pages /Kids [{kids}] /Count {len(page_nums)} >>".encode())
    cat = f"<< /Type /Catalog /Pages {pages_num} 0 R".encode()
    if outline:
        root = w.reserve()
        items = [w.reserve() for _ in outline]
        for i, (title, page_no) in enumerate(outline):
            links = f"/Parent {root} 0 R"
            if i:
                links += f" /Prev {items[i - 1]} 0 R"
            if i + 1 < len(items):
                links += f" /Next {items[i + 1]} 0 R"
            target = page_nums[page_no - 1]
            w.set(items[i], b"<< /Title " + w.string(items[i], title) +
                  f" {links} /Dest [{target} 0 R /XYZ 0 792 0] >>".encode())
        w.set(root, f"<< /Type /Outlines /First {items[0]} 0 R /Last {items[-1]} 0 R /Count {len(items)} >>".encode())
        cat += f" /Outlines {root} 0 R /PageMode /UseOutlines".encode()
    w.set(catalog, cat + b" >>")
    trailer = f"/Size {len(w.objects) + 1} /Root {catalog} 0 R"
    if encryption is not None:
        enc = len(w.objects) + 1
        w.objects.append(encryption.dictionary().encode())  # the Encrypt dictionary itself is never encrypted
        fid = encryption.file_id.hex()
        trailer = f"/Size {len(w.objects) + 1} /Root {catalog} 0 R /Encrypt {enc} 0 R /ID [<{fid}> <{fid}>]"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(w.objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(w.objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< {trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    p = Path(path)
    p.write_bytes(bytes(out))
    return p
