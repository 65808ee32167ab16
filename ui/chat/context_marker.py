"""Where a long chat's earlier messages left the model's view: a quiet divider in the transcript.

ChatSession stores a marker message (role ``context``) when the oldest turns no
longer fit; the transcript shows it where it happened. In summary mode the
marker holds the summary the model sees instead of those turns: collapsed under
the divider, editable (the edit is what the model sees from the next message on).
The widget only asks for the save (``summary_save_requested``); the window writes
it off the GUI thread and hands the stored message back with ``set_message``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from app.storage.conversations import CONTEXT_ROLE, Message, context_marker_text
from ui.widgets import theme

SUMMARY_TITLE = "Summary the model sees"
RULE_MIN = 24  # the hairlines either side of the text never get shorter


def _rule() -> QFrame:
    line = QFrame()
    line.setObjectName("contextRule")
    line.setFixedHeight(1)
    line.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    line.setMinimumWidth(RULE_MIN)
    return line


def _wrapped(text: str = "", name: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setMinimumWidth(1)  # never wider than the column (see message_widget._label)
    policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    lab.setSizePolicy(policy)
    if name:
        lab.setObjectName(name)
    return lab


class ContextMarkerWidget(QFrame):
    """A context marker in the transcript.

    It stands in the chat view's list of message widgets, so it answers the few
    calls the view makes on every row (``set_message``, ``set_version``,
    ``set_pinned``, ``tool_cards``); a marker has no versions or actions of its own.
    """

    summary_save_requested = Signal(int, str)  # marker message id, new summary

    def __init__(self, message: Message, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        assert message.role == CONTEXT_ROLE
        self.setObjectName("contextMarker")
        self.message = message
        self.message_id = message.id
        self.role = message.role
        self.tool_cards: dict[str, Any] = {}  # the view looks tool results up on every row
        self.thinking = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, theme.SPACE_XS, 0, theme.SPACE_XS)
        lay.setSpacing(theme.SPACE_XS)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(theme.SPACE_S)
        self._rules = (_rule(), _rule())
        self.label = _wrapped("", "contextMarkerText")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self._rules[0], 1, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(self.label, 1000)  # takes the room first, up to its text's width (_fit_label)
        row.addWidget(self._rules[1], 1, Qt.AlignmentFlag.AlignVCenter)
        lay.addLayout(row)

        # The summary (summary markers only): a toggle, then the text or its editor.
        self.summary_box = QWidget()
        sl = QVBoxLayout(self.summary_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(theme.SPACE_XS)
        self.toggle = QToolButton()
        self.toggle.setObjectName("thinkingToggle")
        self.toggle.setText(SUMMARY_TITLE)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setCheckable(True)
        self.toggle.setAccessibleName("Show or hide the summary the model sees")
        self.toggle.toggled.connect(self._on_toggle_toggled)
        sl.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignHCenter)
        self.card = QFrame()
        self.card.setObjectName("toolCard")
        cl = QVBoxLayout(self.card)
        cl.setContentsMargins(theme.SPACE_M, theme.SPACE_S, theme.SPACE_M, theme.SPACE_S)
        cl.setSpacing(theme.SPACE_S)
        self.body = _wrapped("", "summaryBody")
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        cl.addWidget(self.body)
        self.editor = QPlainTextEdit()
        self.editor.setAccessibleName("Summary the model sees")
        self.editor.setTabChangesFocus(True)
        self.editor.setMinimumHeight(110)
        self.editor.setVisible(False)
        cl.addWidget(self.editor)
        self.error_label = _wrapped("", "errorLabel")
        self.error_label.setVisible(False)
        cl.addWidget(self.error_label)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.hint = _wrapped("The model sees this in place of the earlier messages. An edit counts from "
                             "the next message on.", "hint")
        buttons.addWidget(self.hint, 1)
        self.edit_button = QPushButton("Edit")
        self.edit_button.setAccessibleName("Edit the summary")
        self.edit_button.clicked.connect(self.start_edit)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel editing the summary")
        self.cancel_button.clicked.connect(self.cancel_edit)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("primaryButton")
        self.save_button.setAccessibleName("Save the summary")
        self.save_button.clicked.connect(self._on_save_clicked)
        for b in (self.edit_button, self.cancel_button, self.save_button):
            buttons.addWidget(b, 0, Qt.AlignmentFlag.AlignBottom)
        cl.addLayout(buttons)
        self.card.setVisible(False)
        sl.addWidget(self.card)
        lay.addWidget(self.summary_box)
        self._saving = False
        self._retint(theme.current())
        theme.notifier().changed.connect(self._retint)
        self.set_message(message)
        self._show_editor(False)

    # ---- content ---------------------------------------------------------

    @property
    def is_summary(self) -> bool:
        return self.message.stats.get("kind") == "summary"

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    @property
    def editing(self) -> bool:
        return not self.editor.isHidden()

    @property
    def content_text(self) -> str:
        return self.message.content

    def set_message(self, m: Message) -> None:
        self.message = m
        text = context_marker_text(m)
        self.label.setText(text)
        self._fit_label()
        self.setAccessibleName(text)
        note = str(m.stats.get("note") or "")
        tip = ("The model no longer sees the messages above this line"
               + (", only the summary below." if self.is_summary else "; they stay here for you to read."))
        if note:
            tip += f" No summary was written: {note}."
        self.label.setToolTip(tip)
        self.body.setText(m.content)
        self.summary_box.setVisible(self.is_summary)
        if self._saving:
            self._saving = False
            self._show_editor(False)

    def _fit_label(self) -> None:
        """The text on one line between the hairlines while it fits, wrapped (hairlines short) when not.

        A word-wrapped label asks for a narrow width of its own: with the largest stretch and its
        text's width as its maximum, it gets the room first and the hairlines the rest. Its minimum
        stays 1, so a narrow window is never held wide by the marker.
        """
        self.label.setMaximumWidth(self.label.fontMetrics().horizontalAdvance(self.label.text()) + 4)

    def set_version(self, *_args: Any) -> None:
        """A marker has no versions (the view asks every row)."""

    def set_pinned(self, _pinned: bool) -> None:
        """A marker has no actions to keep in view."""

    # ---- summary -----------------------------------------------------------

    def set_expanded(self, on: bool) -> None:
        self.toggle.setChecked(on)

    def _on_toggle_toggled(self, on: bool) -> None:
        self.card.setVisible(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def start_edit(self) -> None:
        self.set_expanded(True)
        self.editor.setPlainText(self.message.content)
        self._show_editor(True)
        self.editor.setFocus()

    def cancel_edit(self) -> None:
        self._saving = False
        self._show_editor(False)

    def _show_editor(self, on: bool) -> None:
        self.editor.setVisible(on)
        self.body.setVisible(not on)
        self.edit_button.setVisible(not on)
        self.save_button.setVisible(on)
        self.cancel_button.setVisible(on)
        self.save_button.setEnabled(True)
        self.error_label.setVisible(False)

    def _on_save_clicked(self) -> None:
        text = self.editor.toPlainText().strip()
        if not text:
            self.show_error("The summary is empty. Write what the model should know about the earlier "
                            "messages, or Cancel.")
            return
        self._saving = True
        self.save_button.setEnabled(False)
        self.error_label.setVisible(False)
        self.summary_save_requested.emit(self.message_id, text)

    def show_error(self, message: str) -> None:
        """The save failed: the editor stays open with the text."""
        self._saving = False
        self.save_button.setEnabled(True)
        self.error_label.setText(message)
        self.error_label.setVisible(True)

    # ---- look ------------------------------------------------------------

    def _retint(self, t: theme.Tokens) -> None:
        # Local rules from the theme's tokens: the divider's hairlines and its small muted text.
        self.setStyleSheet(
            f"QFrame#contextRule {{ background: {t.border}; border: none; }}"
            f"QLabel#contextMarkerText {{ color: {t.muted}; font-size: 12px; }}"
            f"QLabel#summaryBody {{ color: {t.text}; }}"
        )


def summarizing_text(messages: int) -> str:
    """The transient line while the model writes a summary before the reply."""
    return f"Summarising {messages} earlier message{'s' if messages != 1 else ''}…"
