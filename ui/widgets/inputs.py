"""Input widgets that behave: the mouse wheel scrolls the page, never a field it passes over."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollBar, QWidget,
)

_GUARDED = (QComboBox, QAbstractSpinBox, QAbstractSlider)


class _WheelGuard(QObject):
    """Hands a wheel event over an unfocused field to the scroll area around it."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget):
            return False
        field = _guarded_field(obj)
        if field is None or field.hasFocus() or obj.hasFocus():
            return False
        parent = field.parentWidget()
        while parent is not None and not isinstance(parent, QAbstractScrollArea):
            parent = parent.parentWidget()
        if parent is not None:
            QApplication.sendEvent(parent.verticalScrollBar(), event)
        return True  # the field itself never changes on a wheel it did not ask for


def _guarded_field(w: QWidget) -> QWidget | None:
    """``w`` or the combo / spin box / slider it belongs to (an editable combo's text field)."""
    while w is not None:
        if isinstance(w, _GUARDED) and not isinstance(w, QScrollBar):
            return w
        w = w.parentWidget()
    return None


_guard: _WheelGuard | None = None


def guard_wheel(root: QWidget) -> None:
    """Make every combo box, spin box and slider under ``root`` ignore the wheel unless focused.

    The wheel then scrolls the page around the field instead. Call it once a page is built
    (again after adding fields); an editable combo's or a spin box's own text field is guarded
    too, since that is the widget the wheel event reaches first.
    """
    global _guard
    if _guard is None:
        _guard = _WheelGuard()
    widgets = [root, *root.findChildren(QWidget)]
    for w in widgets:
        if isinstance(w, _GUARDED) and not isinstance(w, QScrollBar):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a wheel must not give it focus either
            for target in (w, *w.findChildren(QWidget)):
                target.removeEventFilter(_guard)
                target.installEventFilter(_guard)
