"""The chat header's "Reset python" action."""

from __future__ import annotations

from typing import Any

from ui.chat.header import ChatHeader


def test_reset_python_button_emits_the_request(qtbot: Any) -> None:
    header = ChatHeader()
    qtbot.addWidget(header)
    assert not header.reset_python_button.isVisibleTo(header)  # only while the python tool is on
    header.reset_python_button.setVisible(True)
    with qtbot.waitSignal(header.reset_python_requested, timeout=1000):
        header.reset_python_button.click()
