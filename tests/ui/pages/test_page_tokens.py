"""Settings and Hardware pages are styled by the theme's tokens: no inline <h2>, hints are QLabel#hint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QLabel

from app.context import AppContext
from app.hardware import builtin_profile
from ui.pages import hardware as hardware_page
from app.models import TokenStore
from ui.shell.app import add_hardware_page, add_settings_page
from ui.shell.main_window import MainWindow


@pytest.fixture
def win(qtbot, ctx: AppContext, monkeypatch) -> Iterator[MainWindow]:
    monkeypatch.setattr(hardware_page, "detect_hardware", lambda *_a, **_k: builtin_profile("cpu-16gb"))
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    add_hardware_page(w)
    add_settings_page(w, TokenStore())
    w.show()
    yield w
    w.close()


def test_titles_and_hints_use_the_stylesheet_not_inline_html(win) -> None:
    for page, title in ((win.settings_page, "Settings"), (win.hardware_page, "Hardware")):
        labels = page.findChildren(QLabel)
        assert not [lab.text() for lab in labels if "<h" in lab.text()]
        heads = [lab for lab in labels if lab.objectName() == "sectionHeader"]
        assert [h.text() for h in heads] == [title]
        assert not [lab for lab in labels if lab.objectName() == "messageFooter"]
    hints = [lab for lab in win.settings_page.findChildren(QLabel) if lab.objectName() == "hint"]
    assert any("Auto lets Hearth choose" in h.text() for h in hints)
