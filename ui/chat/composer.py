"""The message box: Enter sends, Shift+Enter new line, Send turns into Stop."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget,
)

MAX_LINES = 8


class _Edit(QPlainTextEdit):
    submit = Signal()
    escape = Signal()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            e.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier)
        ):
            self.submit.emit()
            return
        if e.key() == Qt.Key.Key_Escape:
            self.escape.emit()
            return
        super().keyPressEvent(e)


class Composer(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    attach_requested = Signal()
    reasoning_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 6, 16, 10)
        row = QHBoxLayout()
        self.attach_button = QToolButton()
        self.attach_button.setText("+")
        self.attach_button.setObjectName("attachButton")
        self.attach_button.setToolTip("Attach documents")
        self.attach_button.setAccessibleName("Attach documents")
        self.attach_button.clicked.connect(self.attach_requested)
        row.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.edit = _Edit()
        self.edit.setObjectName("composerEdit")
        self.edit.setPlaceholderText("Message Hearth…  (Enter to send, Shift+Enter for a new line)")
        self.edit.setAccessibleName("Message")
        self.edit.setTabChangesFocus(True)
        self.edit.submit.connect(self._on_edit_submit)
        self.edit.escape.connect(self.stop_requested)
        self.edit.textChanged.connect(self._fit_height)
        row.addWidget(self.edit, 1)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setAccessibleName("Send message")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._on_send_clicked)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addLayout(row)
        info = QHBoxLayout()
        self.reasoning = QComboBox()
        self.reasoning.addItems(["Reasoning: low", "Reasoning: medium", "Reasoning: high"])
        self.reasoning.setCurrentIndex(1)
        self.reasoning.setAccessibleName("Reasoning effort")
        self.reasoning.setToolTip("How long gpt-oss thinks before answering")
        self.reasoning.currentIndexChanged.connect(
            lambda i: self.reasoning_changed.emit(("low", "medium", "high")[i])
        )
        self.reasoning.setVisible(False)  # shown for gpt-oss models
        info.addWidget(self.reasoning)
        info.addStretch(1)
        self.context_label = QLabel("")
        self.context_label.setObjectName("contextMeter")
        self.context_label.setAccessibleName("Context used")
        info.addWidget(self.context_label)
        outer.addLayout(info)
        self._busy = False
        self._fit_height()

    # ---- state -----------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.setText("Stop" if busy else "Send")
        self.send_button.setAccessibleName("Stop generating" if busy else "Send message")

    @property
    def busy(self) -> bool:
        return self._busy

    def set_reasoning(self, effort: str, visible: bool = True) -> None:
        self.reasoning.blockSignals(True)
        self.reasoning.setCurrentIndex({"low": 0, "medium": 1, "high": 2}.get(effort, 1))
        self.reasoning.blockSignals(False)
        self.reasoning.setVisible(visible)

    def set_context(self, used: int | None, total: int | None) -> None:
        if not total:
            self.context_label.setText("")
            return
        def k(n: int) -> str:
            return f"{n / 1000:.1f}k" if n >= 1000 else str(n)
        self.context_label.setText(f"{k(used or 0)} / {k(total)} tokens")

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def focus(self) -> None:
        self.edit.setFocus()

    # ---- slots -----------------------------------------------------------

    def _on_edit_submit(self) -> None:
        if not self._busy:
            self._on_send_clicked()

    def _on_send_clicked(self) -> None:
        if self._busy:
            self.stop_requested.emit()
            return
        text = self.edit.toPlainText()
        if not text.strip():
            return
        self.send_requested.emit(text)

    def _fit_height(self) -> None:
        fm = self.edit.fontMetrics()
        lines = max(1, min(MAX_LINES, int(self.edit.document().size().height()) or 1))
        self.edit.setFixedHeight(int(fm.lineSpacing() * lines + 16))
