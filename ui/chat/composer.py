"""The message box: Enter sends, Shift+Enter new line, Send turns into Stop; reasoning
effort and the context meter sit underneath."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from app.context_window import reply_room
from ui.widgets import theme
from ui.widgets.icons import icon
from ui.widgets.segmented import SegmentedControl

MAX_LINES = 8
WARN_SHARE = 0.8  # the meter turns amber when this share of the context is in use
EFFORTS = ("low", "medium", "high")


def short_count(n: int) -> str:
    """1234 -> "1.2k"; 32768 -> "32.8k"; 500 -> "500"."""
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _centred(w: QWidget) -> QHBoxLayout:
    """``w`` as wide as the message column (at most), centred."""
    w.setMaximumWidth(theme.COLUMN_MAX)
    w.setSizePolicy(QSizePolicy.Policy.Expanding, w.sizePolicy().verticalPolicy())
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addStretch(1)
    row.addWidget(w, 1000)
    row.addStretch(1)
    return row


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
        outer.setContentsMargins(theme.SPACE_L, theme.SPACE_S, theme.SPACE_L, theme.SPACE_M)
        outer.setSpacing(theme.SPACE_XS)
        self.box = QFrame()
        self.box.setObjectName("composerBox")
        row = QHBoxLayout(self.box)
        row.setContentsMargins(theme.SPACE_S, theme.SPACE_XS + 2, theme.SPACE_S, theme.SPACE_XS + 2)
        row.setSpacing(theme.SPACE_S)
        self.attach_button = QToolButton()
        self.attach_button.setObjectName("attachButton")
        self.attach_button.setText("Attach")
        self.attach_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.attach_button.setIconSize(QSize(18, 18))
        self.attach_button.setToolTip("Attach documents")
        self.attach_button.setAccessibleName("Attach documents")
        self.attach_button.clicked.connect(self.attach_requested)
        row.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.edit = _Edit()
        self.edit.setObjectName("composerEdit")
        self.edit.setPlaceholderText("Message Hearth…")
        self.edit.setToolTip("Enter sends, Shift+Enter starts a new line")
        self.edit.setAccessibleName("Message")
        self.edit.setTabChangesFocus(True)
        self.edit.submit.connect(self._on_edit_submit)
        self.edit.escape.connect(self.stop_requested)
        self.edit.textChanged.connect(self._fit_height)
        row.addWidget(self.edit, 1)
        self.send_button = QToolButton()
        self.send_button.setObjectName("sendButton")
        self.send_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.send_button.setFixedSize(32, 32)
        self.send_button.setIconSize(QSize(18, 18))
        self.send_button.clicked.connect(self._on_send_clicked)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addLayout(_centred(self.box))

        info = QHBoxLayout()
        info.setContentsMargins(theme.SPACE_XS, 0, theme.SPACE_XS, 0)
        self.reasoning = SegmentedControl(["Low", "Medium", "High"], name="Reasoning effort")
        self.reasoning.setToolTip("How long gpt-oss thinks before answering")
        self.reasoning.setCurrentIndex(1)
        self.reasoning.currentIndexChanged.connect(lambda i: self.reasoning_changed.emit(EFFORTS[i]))
        self.reasoning_label = QLabel("Reasoning")
        self.reasoning_label.setObjectName("contextMeter")
        info.addWidget(self.reasoning_label)
        info.addWidget(self.reasoning)
        self.set_reasoning_visible(False)  # shown for gpt-oss models
        info.addStretch(1)
        self.context_label = QLabel("")
        self.context_label.setObjectName("contextMeter")
        self.context_label.setAccessibleName("Context used")
        info.addWidget(self.context_label)
        self.info_row = QWidget()
        self.info_row.setLayout(info)
        outer.addLayout(_centred(self.info_row))
        self._busy = False
        self._can_send = True
        self._used: int | None = None
        self._total: int | None = None
        self._documents = 0  # about how many of the used tokens are attached documents
        self._overflow = "drop"  # what happens when the chat outgrows the context
        self._max_tokens = 4096  # the reply's room is kept free (app.context_window.reply_room)
        self._retint(theme.current())
        theme.notifier().changed.connect(self._retint)
        self.set_busy(False)
        self._fit_height()

    def _retint(self, t: theme.Tokens) -> None:
        self.attach_button.setIcon(icon("attach", t.muted))
        self.send_button.setIcon(icon("stop" if self._busy else "send", t.on_accent))

    # ---- state -----------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.setText("Stop" if busy else "Send")
        self.send_button.setToolTip("Stop generating (Esc)" if busy else "Send (Enter)")
        self.send_button.setAccessibleName("Stop generating" if busy else "Send message")
        self.send_button.setIcon(icon("stop" if busy else "send", theme.current().on_accent))
        self.send_button.setEnabled(busy or self._can_send)

    def set_can_send(self, can: bool, why: str = "") -> None:
        """Disable Send (not Stop) while no model is loaded; ``why`` becomes its tooltip."""
        self._can_send = can
        if not self._busy:
            self.send_button.setEnabled(can)
            self.send_button.setToolTip("Send (Enter)" if can else why)

    @property
    def busy(self) -> bool:
        return self._busy

    def set_reasoning_visible(self, visible: bool) -> None:
        self.reasoning.setVisible(visible)
        self.reasoning_label.setVisible(visible)

    def set_reasoning(self, effort: str, visible: bool = True) -> None:
        self.reasoning.blockSignals(True)
        self.reasoning.setCurrentIndex({"low": 0, "medium": 1, "high": 2}.get(effort, 1))
        self.reasoning.blockSignals(False)
        self.set_reasoning_visible(visible)

    @property
    def effort(self) -> str:
        return EFFORTS[max(0, self.reasoning.currentIndex())]

    def set_context(self, used: int | None, total: int | None) -> None:
        """The meter: tokens in the model's view / context size; amber from 80%."""
        self._used, self._total = used, total
        if not total:
            self.context_label.setText("")
            self.context_label.setToolTip("")
            return
        used = used or 0
        share = used / total
        text = f"{short_count(used)} / {short_count(total)} tokens"
        docs = self._documents
        if docs:
            text += f" · documents {short_count(docs)}"
        self.context_label.setText(text)
        level = "warn" if share >= WARN_SHARE else ""
        theme.set_style_property(self.context_label, "level", level)
        tip = f"{used:,} of {total:,} tokens of the model's context are in use ({share:.0%})."
        if docs:
            tip += f" Attached documents take about {docs:,} of them ({docs / total:.0%} of the context)."
        left = total - reply_room(total, self._max_tokens) - used
        what = ("the model summarises the oldest turns and sees the summary in their place"
                if self._overflow == "summarize" else "the oldest turns leave the model's view")
        tip += f"\nWhen the chat outgrows the context, {what} (they stay in the transcript); "
        tip += (f"about {left:,} tokens are left before that." if left > 0 else "the next message moves the view on.")
        self.context_label.setToolTip(tip)

    def set_context_details(self, *, documents: int = 0, overflow: str = "drop", max_tokens: int = 4096) -> None:
        """What the meter adds to the count: the documents' share, and what happens when the context is full
        (``overflow`` "drop" | "summarize"; ``max_tokens`` sets the room kept free for the reply)."""
        self._documents, self._overflow, self._max_tokens = max(0, int(documents)), overflow, int(max_tokens)
        self.set_context(self._used, self._total)

    def add_streamed_tokens(self, n: int) -> None:
        """Count tokens as they stream, so the meter moves during a reply."""
        if self._total:
            self.set_context((self._used or 0) + n, self._total)

    @property
    def context(self) -> tuple[int | None, int | None]:
        return self._used, self._total

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)
        cursor = self.edit.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.edit.setTextCursor(cursor)

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
        wanted = max(1, int(self.edit.document().size().height()) or 1)
        lines = min(MAX_LINES, wanted)
        # A scroll bar only once the box has stopped growing (a squashed one showed in a one-line box).
        self.edit.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if wanted > MAX_LINES
                                             else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.edit.setFixedHeight(int(fm.lineSpacing() * lines + 2 * self.edit.frameWidth()
                                     + 2 * self.edit.document().documentMargin()))
