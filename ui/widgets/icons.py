"""Icons from assets/icons (SVG), tinted to the theme and rendered crisp at any scale."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer


def assets_dir() -> Path:
    """assets/ beside the source tree, or inside a PyInstaller bundle."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        return Path(base) / "assets"
    return Path(__file__).resolve().parents[2] / "assets"


@lru_cache(maxsize=None)
def _svg(name: str) -> str:
    return (assets_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")


class _TintedSvgEngine(QIconEngine):
    """Draws the SVG at the exact device size asked for, so icons stay sharp at 2x."""

    def __init__(self, name: str, color: str) -> None:
        super().__init__()
        self._name, self._color = name, color
        data = _svg(name).replace("#000000", color)
        self._renderer = QSvgRenderer(QByteArray(data.encode("utf-8")))

    def paint(self, painter: QPainter, rect, mode, state) -> None:  # noqa: ANN001 - Qt override
        if mode == QIcon.Mode.Disabled:
            painter.setOpacity(0.35)
        self._renderer.render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode, state) -> QPixmap:  # noqa: ANN001 - Qt override
        pm = QPixmap(size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        self.paint(p, pm.rect(), mode, state)
        p.end()
        return pm

    def scaledPixmap(self, size: QSize, mode, state, scale: float) -> QPixmap:  # noqa: N802, ANN001
        pm = self.pixmap(QSize(round(size.width() * scale), round(size.height() * scale)), mode, state)
        pm.setDevicePixelRatio(scale)
        return pm

    def clone(self) -> QIconEngine:
        return _TintedSvgEngine(self._name, self._color)


def icon(name: str, color: str | QColor = "#6b6b6b") -> QIcon:
    """The icon ``assets/icons/<name>.svg`` drawn in ``color``."""
    c = color.name() if isinstance(color, QColor) else color
    return QIcon(_TintedSvgEngine(name, c))

