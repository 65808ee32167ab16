"""The shape every full page shares: a frameless scroll area holding one padded column."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget


def scrolled_page(page: QWidget, *, margins: tuple[int, int, int, int] = (24, 16, 24, 16),
                  spacing: int = 14) -> tuple[QVBoxLayout, QScrollArea, QVBoxLayout]:
    """Lay ``page`` out as a scrolling column: returns (outer layout, scroll area, column)."""
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    outer.addWidget(scroll, 1)
    body = QWidget()
    scroll.setWidget(body)
    col = QVBoxLayout(body)
    col.setContentsMargins(*margins)
    col.setSpacing(spacing)
    return outer, scroll, col
