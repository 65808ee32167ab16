"""Test documents made on the spot: encrypted PDFs (RC4, the PDF standard security
handler revision 2), DOCX through python-docx, and a corpus of distinct documents."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import docx

from app.documents.index import DocumentIndex
from app.documents.models import IngestProgress

# The padding string of the PDF standard security handler (ISO 32000-1, 7.6.3.3).
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_PERMISSIONS = -44  # print and copy allowed; the usual value


def rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PAD)[:32]


@dataclass
class RC4Encryption:
    """40-bit RC4 (V 1, R 2): old but every reader, PDFium included, opens it."""

    user_password: str
    owner_password: str = "owner"
    file_id: bytes = b"hearth-test-id!!"

    def __post_init__(self) -> None:
        owner_key = hashlib.md5(_padded(self.owner_password)).digest()[:5]
        self.o = rc4(owner_key, _padded(self.user_password))
        self.key = hashlib.md5(
            _padded(self.user_password) + self.o + struct.pack("<i", _PERMISSIONS) + self.file_id
        ).digest()[:5]
        self.u = rc4(self.key, _PAD)

    def encrypt(self, obj_num: int, data: bytes) -> bytes:
        k = hashlib.md5(self.key + obj_num.to_bytes(3, "little") + b"\x00\x00").digest()[:10]
        return rc4(k, data)

    def dictionary(self) -> str:
        return (f"<< /Filter /Standard /V 1 /R 2 /O <{self.o.hex()}> /U <{self.u.hex()}> "
                f"/P {_PERMISSIONS} >>")


def write_docx(path: Path, blocks: list[tuple[str, str]]) -> Path:
    """blocks: (kind, text) with kind 'h1'/'h2' (heading), 'p' (paragraph), 'break' (page break)."""
    d = docx.Document()
    for kind, text in blocks:
        if kind.startswith("h"):
            d.add_heading(text, level=int(kind[1:]))
        elif kind == "break":
            d.add_page_break()
        else:
            d.add_paragraph(text)
    d.save(str(path))
    return path


def ingest(index: DocumentIndex, path: Path, conversation_id: int, **kw: object) -> IngestProgress:
    """Run one ingestion to its end; returns the last event."""
    events = list(index.ingest(path, conversation_id, **kw))  # type: ignore[arg-type]
    assert events, "ingest yielded nothing"
    return events[-1]
