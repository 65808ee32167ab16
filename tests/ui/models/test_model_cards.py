"""Model cards: the fit badges form one column down a list, whatever the titles and buttons."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.planner import DOES_NOT_FIT, FITS, FITS_SLOWER
from ui.models.widgets import FIT_PENDING, Fit, ModelCard


def test_fit_badges_line_up_across_cards(qtbot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    col = QVBoxLayout(host)
    specs = [
        ("gpt-oss-20b", "Recommended", Fit(FITS, "ok"), ["Download 12.1 GB"]),
        ("Qwen2.5 1.5B Instruct", "", Fit(FITS_SLOWER, "slower"), ["Load"]),
        ("a-very-long-model-name-that-goes-on-Q4_K_M", "", Fit(DOES_NOT_FIT, "no"), ["In Downloads", "More"]),
        ("x", "", FIT_PENDING, []),
    ]
    cards = []
    for title, tag, fit, buttons in specs:
        card = ModelCard(title, ["facts"], fit=fit, tag=tag)
        for i, text in enumerate(buttons):
            card.add_button(f"b{i}", text, lambda: None)
        col.addWidget(card)
        cards.append(card)
    host.resize(760, 400)
    host.show()
    qtbot.waitExposed(host)
    xs = {c.badge.mapTo(host, QPoint(0, 0)).x() for c in cards}
    widths = {c.badge.width() for c in cards}
    assert len(xs) == 1, xs
    assert len(widths) == 1, widths
    # the text of the widest verdict fits in the badge
    for c in cards:
        assert c.badge.fontMetrics().horizontalAdvance(c.badge.text()) < c.badge.width()
