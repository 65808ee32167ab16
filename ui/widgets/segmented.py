"""A segmented control (Low | Medium | High): one click, no popup, no wheel surprises."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QToolButton, QWidget


class SegmentedControl(QWidget):
    currentIndexChanged = Signal(int)  # noqa: N815 - the same name as QComboBox's

    def __init__(self, labels: list[str], *, name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("segmented")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self.buttons: list[QToolButton] = []
        for i, text in enumerate(labels):
            b = QToolButton()
            b.setText(text)
            b.setCheckable(True)
            b.setObjectName("segment")
            b.setProperty("position", "first" if i == 0 else "last" if i == len(labels) - 1 else "middle")
            b.setAccessibleName(f"{name}: {text}" if name else text)
            self._group.addButton(b, i)
            lay.addWidget(b)
            self.buttons.append(b)
        if self.buttons:
            self.buttons[0].setChecked(True)
        self._group.idToggled.connect(self._on_group_id_toggled)
        self.setAccessibleName(name)

    def currentIndex(self) -> int:  # noqa: N802 - the same API as QComboBox
        return self._group.checkedId()

    def setCurrentIndex(self, index: int) -> None:  # noqa: N802
        if 0 <= index < len(self.buttons) and index != self.currentIndex():
            self.buttons[index].setChecked(True)

    def count(self) -> int:
        return len(self.buttons)

    def _on_group_id_toggled(self, index: int, checked: bool) -> None:
        if checked and not self.signalsBlocked():
            self.currentIndexChanged.emit(index)
