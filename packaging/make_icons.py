"""Make the Windows (.ico) and macOS (.icns) app icons from ``assets/hearth.png``.

Both formats are written here, with Qt only scaling and PNG-encoding the
image, so building a bundle needs neither Pillow nor macOS's iconutil:

* .ico: 16, 24, 32, 48 and 64 px as 32-bit DIBs (what every Windows version and
  Inno Setup read), 256 px as an embedded PNG (Windows Vista and later).
* .icns: PNG-encoded entries (ic07..ic10: 128..1024 px), which macOS 10.7+ reads.

Usage: ``python packaging/make_icons.py [--png assets/hearth.png] --out build/icons``
"""

from __future__ import annotations

import argparse
import logging
import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage

log = logging.getLogger(__name__)

ICO_DIB_SIZES = (16, 24, 32, 48, 64)
ICO_PNG_SIZE = 256
# icns type codes for PNG payloads, by pixel size.
ICNS_TYPES = {128: b"ic07", 256: b"ic08", 512: b"ic09", 1024: b"ic10"}


def _scaled(image: QImage, size: int) -> QImage:
    img = image.convertToFormat(QImage.Format.Format_ARGB32)
    if img.width() != size or img.height() != size:
        img = img.scaled(size, size, Qt.AspectRatioMode.IgnoreAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    return img.convertToFormat(QImage.Format.Format_ARGB32)


def _png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):  # type: ignore[call-overload]  # stubs: bytes; runtime: str
        raise RuntimeError("Qt could not encode a PNG")
    buf.close()
    return bytes(data.data())


def _dib_bytes(image: QImage) -> bytes:
    """A BITMAPINFOHEADER + bottom-up BGRA rows + an all-zero AND mask (ICO's DIB layout)."""
    size = image.width()
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    rows = []
    stride = image.bytesPerLine()
    bits = bytes(image.constBits())  # Format_ARGB32 is B, G, R, A in memory on little-endian
    for y in range(size - 1, -1, -1):
        rows.append(bits[y * stride: y * stride + size * 4])
    mask_row = ((size + 31) // 32) * 4  # 1 bit per pixel, rows padded to 4 bytes
    return header + b"".join(rows) + b"\0" * (mask_row * size)


def make_ico(image: QImage) -> bytes:
    entries = [(s, _dib_bytes(_scaled(image, s))) for s in ICO_DIB_SIZES]
    entries.append((ICO_PNG_SIZE, _png_bytes(_scaled(image, ICO_PNG_SIZE))))
    out = [struct.pack("<HHH", 0, 1, len(entries))]
    offset = 6 + 16 * len(entries)
    for size, data in entries:
        dim = size if size < 256 else 0  # 0 means 256 in an ICONDIRENTRY
        out.append(struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset))
        offset += len(data)
    out.extend(data for _size, data in entries)
    return b"".join(out)


def make_icns(image: QImage) -> bytes:
    chunks = []
    for size, code in ICNS_TYPES.items():
        data = _png_bytes(_scaled(image, size))
        chunks.append(code + struct.pack(">I", len(data) + 8) + data)
    body = b"".join(chunks)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description="Make hearth.ico and hearth.icns from a PNG.")
    ap.add_argument("--png", type=Path, default=root / "assets" / "hearth.png")
    ap.add_argument("--out", type=Path, required=True)
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="make_icons: %(message)s")
    image = QImage(str(ns.png))
    if image.isNull():
        raise SystemExit(f"cannot read the icon image {ns.png}")
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "hearth.ico").write_bytes(make_ico(image))
    (ns.out / "hearth.icns").write_bytes(make_icns(image))
    log.info("wrote hearth.ico and hearth.icns to %s", ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
