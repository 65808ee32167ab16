"""The Settings page as a form: the wheel scrolls the page (never a field), every field starts at one x,
and the proxy field offers exactly the schemes app.settings accepts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QFormLayout, QWidget

from app import settings as app_settings
from app.context import AppContext
from ui.pages import settings as settings_module
from app.models import TokenStore
from ui.pages.settings import SettingsPage
from ui.shell.app import add_settings_page
from ui.shell.main_window import MainWindow
from ui.widgets.theme import LABEL_WIDTH


@pytest.fixture
def page(qtbot, ctx: AppContext) -> Iterator[SettingsPage]:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    p = add_settings_page(win, TokenStore())
    win.resize(900, 420)  # short: the page has to scroll
    win.show()
    win.show_page(p)
    qtbot.waitExposed(win)
    yield p
    win.close()


def wheel_down(target: QWidget, pos: QPoint) -> None:
    """One notch of a real mouse wheel (delivered to the widget under the pointer, as Qt does)."""
    glob = target.mapToGlobal(pos)
    ev = QWheelEvent(QPointF(pos), QPointF(glob), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(target, ev)


def test_the_wheel_over_an_unfocused_combo_scrolls_the_page_and_keeps_the_value(qtbot, page) -> None:
    combo = page.context_size
    bar = page._scroll.verticalScrollBar()
    assert bar.maximum() > 0, "the page must be taller than the window for this test"
    page._scroll.ensureWidgetVisible(combo, 0, 0)
    qtbot.waitUntil(combo.isVisible)
    bar.setValue(bar.value() - min(bar.value(), 20))  # room to scroll down
    value, index = combo.currentText(), combo.currentIndex()
    assert not combo.hasFocus()
    before = bar.value()
    # The pointer is over the combo's text field (an editable combo): that is the widget Qt delivers to.
    centre = combo.rect().center()
    under = combo.childAt(centre) or combo
    for _ in range(3):
        wheel_down(under, under.mapFrom(combo, centre))
    assert combo.currentText() == value and combo.currentIndex() == index
    assert not page._dirty  # nothing changed behind the user's back
    assert bar.value() > before, "the page did not scroll"
    # The reasoning-effort combo (not editable) keeps its value too.
    effort = page.reasoning_effort
    index = effort.currentIndex()
    wheel_down(effort, effort.rect().center())
    assert effort.currentIndex() == index


def _fields(page: SettingsPage) -> list[QWidget]:
    out = []
    for form in page.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if item is not None and item.widget() is not None and item.widget().isVisibleTo(page):
                out.append(item.widget())
    return out


def test_every_field_in_every_section_starts_at_one_x(page) -> None:
    fields = _fields(page)
    assert len(fields) >= 15
    xs = {f.mapTo(page, QPoint(0, 0)).x() for f in fields}
    assert len(xs) == 1, sorted(xs)
    for form in page.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None:
                assert item.widget().width() == LABEL_WIDTH


def test_proxy_schemes_come_from_app_settings_and_the_help_names_them(page) -> None:
    assert settings_module.PROXY_SCHEMES is app_settings.PROXY_SCHEMES
    assert "https" not in settings_module.PROXY_SCHEMES
    desc = page.proxy.accessibleDescription()
    for s in app_settings.PROXY_SCHEMES:
        assert f"{s}://" in desc
    assert "not https://" in desc
    assert page.proxy.placeholderText().startswith("http://")
    page.proxy.setText("https://proxy.example:3128")
    assert not page.save()
    assert page.errors["proxy"].isVisibleTo(page) and "http://" in page.errors["proxy"].text()
    page.proxy.setText("socks5://127.0.0.1:1080")
    assert page.save() and page.ctx.settings.proxy == "socks5://127.0.0.1:1080"
