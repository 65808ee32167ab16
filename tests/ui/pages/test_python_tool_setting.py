"""Settings › the "Python tool" switch: on by default, saved when turned off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.context import AppContext
from app.models import TokenStore
from app.settings import load_settings
from ui.pages.settings import SettingsPage
from ui.shell.app import add_settings_page
from ui.shell.main_window import MainWindow


@pytest.fixture
def page(qtbot, ctx: AppContext) -> Iterator[SettingsPage]:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    p = add_settings_page(win, TokenStore())
    win.show_page(p)
    yield p
    win.close()


def test_python_tool_switch_is_on_by_default_and_saves(page: SettingsPage, ctx: AppContext) -> None:
    assert page.python_tool.isChecked()
    page.python_tool.setChecked(False)
    assert page.save()
    assert ctx.settings.python_tool is False
    assert load_settings(ctx.paths.settings_path).python_tool is False
