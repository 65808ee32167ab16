"""The python tool's card: the code highlighted, then its output."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from ui.chat.message_widget import ToolCard


def test_python_card_shows_highlighted_code_and_output(qtbot: Any) -> None:
    card = ToolCard("python", "x = 2**10\nprint(x < 2000)")
    qtbot.addWidget(card)
    assert "running…" in card.detail.text()
    card.set_result("True\n<not html>", True)
    text = card.detail.text()
    assert card.detail.textFormat() == Qt.TextFormat.RichText
    assert "<span" in text and "print" in text  # pygments colours the code
    assert "&lt;not html&gt;" in text and "True" in text  # output escaped, shown as is
    assert card.header.text().startswith("python(x = 2**10")
    card.header.setChecked(True)
    assert card.detail.isVisibleTo(card)


def test_other_tools_keep_the_plain_card(qtbot: Any) -> None:
    card = ToolCard("calculator", '{"expression": "1+1"}')
    qtbot.addWidget(card)
    card.set_result("2", True)
    assert card.detail.text().startswith("Arguments:\n")
