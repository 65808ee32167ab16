"""The conversation column: lazily rendered history plus the streaming reply."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget,
)

from app.storage.conversations import CONTEXT_ROLE, ConversationStore, Message
from ui.chat.context_marker import ContextMarkerWidget
from ui.chat.message_widget import MessageWidget
from ui.widgets import theme

PAGE = 40  # messages rendered at a time; older ones load on demand
MAX_COLUMN = theme.COLUMN_MAX


class _Canvas(QWidget):
    """The scrolled widget. Its height is always its layout's height for the viewport's width.

    A word-wrapped label's size hint is measured at a narrow default width (about twice
    the height it has in the column); had the canvas a minimum size from those hints, the
    scroll area would make it that tall and the view would scroll into empty space below
    the last message. With no minimum, QScrollArea sizes it by heightForWidth alone.
    """

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(0, 0)


class ChatView(QScrollArea):
    regenerate_requested = Signal(int)
    edit_requested = Signal(int)
    retry_requested = Signal(int)
    citation_clicked = Signal(dict)
    version_requested = Signal(int, int)  # seq of the fork, version to show
    summary_edited = Signal(int, str)  # context marker id, the summary as the user edited it

    def __init__(self, store_factory: Callable[[], ConversationStore], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store_factory = store_factory
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Conversation")
        outer = _Canvas()
        outer.setObjectName("chatCanvas")
        outer.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        # Centred by stretches, not by alignment: a horizontal box computes each item's
        # height for the width it really gets, so the canvas height is exact.
        self._outer_lay = QHBoxLayout(outer)
        self._outer_lay.setContentsMargins(theme.SPACE_L, theme.SPACE_L, theme.SPACE_L, theme.SPACE_L)
        self.column = QWidget()
        self.column.setObjectName("chatColumn")
        self.column.setMaximumWidth(MAX_COLUMN)
        self.column.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._lay = QVBoxLayout(self.column)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.setSpacing(theme.SPACE_M)
        self.more_button = QPushButton("Show earlier messages")
        self.more_button.setAccessibleName("Show earlier messages")
        self.more_button.clicked.connect(self.load_earlier)
        self.more_button.setVisible(False)
        self._lay.addWidget(self.more_button)
        self.empty_label = QLabel("")
        self.empty_label.setObjectName("emptyState")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._lay.addWidget(self.empty_label)
        # A passing note under the last message ("Summarising 14 earlier messages…").
        self.transient_label = QLabel("")
        self.transient_label.setObjectName("hint")
        self.transient_label.setWordWrap(True)
        self.transient_label.setAccessibleName("Chat status")
        self.transient_label.setVisible(False)
        self._lay.addWidget(self.transient_label)
        self._lay.addStretch(1)
        self._outer_lay.addStretch(1)
        self._outer_lay.addWidget(self.column, 1000)
        self._outer_lay.addStretch(1)
        self.setWidget(outer)
        self.conversation_id: int | None = None
        self.widgets: dict[int, MessageWidget] = {}
        self._first_seq: int | None = None
        self._stick_to_bottom = True
        self.verticalScrollBar().valueChanged.connect(self._on_scroll_value_changed)
        self.verticalScrollBar().rangeChanged.connect(self._on_scroll_range_changed)

    @property
    def store(self) -> ConversationStore:
        return self._store_factory()

    # ---- content ---------------------------------------------------------

    def clear(self) -> None:
        for w in self.widgets.values():
            self._lay.removeWidget(w)
            w.hide()  # out of view now, deleted later
            w.deleteLater()
        self.widgets.clear()
        self._first_seq = None
        self.more_button.setVisible(False)
        self.transient_label.setVisible(False)

    def set_empty_text(self, text: str) -> None:
        self.empty_label.setText(text)
        self.empty_label.setVisible(bool(text) and not self.widgets)

    def show_conversation(self, conversation_id: int | None, *, keep_seq: int | None = None) -> None:
        """Show the newest messages (scrolled to the end, or to message ``keep_seq``)."""
        self.clear()
        self.conversation_id = conversation_id
        if conversation_id is None:
            self.set_empty_text(self.empty_label.text())
            return
        msgs = self.store.messages(conversation_id, limit=PAGE)
        for m in msgs:
            self._append_widget(m)
        self._first_seq = msgs[0].seq if msgs else None
        self.more_button.setVisible(bool(msgs) and msgs[0].seq > 0)
        self.empty_label.setVisible(not msgs and bool(self.empty_label.text()))
        self.refresh_versions()
        target = next((w for w in self.widgets.values() if w.message.seq == keep_seq), None)
        if target is not None:
            self._stick_to_bottom = False
            QTimer.singleShot(0, lambda: self.ensureWidgetVisible(target, 0, 40))
        else:
            self._stick_to_bottom = True
            QTimer.singleShot(0, self.scroll_to_bottom)

    def refresh_versions(self) -> None:
        """"‹ 2/3 ›" on every message where the conversation forks; actions on the newest pair."""
        if self.conversation_id is None:
            return
        groups = self.store.version_groups(self.conversation_id)
        carried = None
        for w in sorted(self.widgets.values(), key=lambda w: w.message.seq):
            info, carried = groups.get(w.message.seq) or carried, None
            if w.role == CONTEXT_ROLE:  # a context marker has no versions: the message after it shows them
                carried, info = info, None
            w.set_version(info.seq, info.active, info.total) if info else w.set_version(None)
        widgets = list(self.widgets.values())
        last_user = next((w for w in reversed(widgets) if w.role == "user"), None)
        last_reply = next((w for w in reversed(widgets) if w.role not in ("user", CONTEXT_ROLE)), None)
        for w in widgets:
            w.set_pinned(w is last_user or w is last_reply)

    def follow_reply(self) -> None:
        """A new turn started: follow it to the bottom."""
        self._stick_to_bottom = True
        self.scroll_to_bottom()

    def load_earlier(self) -> None:
        if self.conversation_id is None or self._first_seq is None:
            return
        older = self.store.messages_before(self.conversation_id, self._first_seq, PAGE)
        bar = self.verticalScrollBar()
        old_max = bar.maximum()
        for i, m in enumerate(older):
            if m.role == "tool":
                continue
            w = self._make_widget(m)
            self._lay.insertWidget(1 + i, w)
        if older:
            self._first_seq = older[0].seq
        self.more_button.setVisible(bool(older) and older[0].seq > 0)
        QTimer.singleShot(0, lambda: bar.setValue(bar.value() + bar.maximum() - old_max))

    def _make_widget(self, m: Message) -> MessageWidget:
        if m.role == CONTEXT_ROLE:
            marker = ContextMarkerWidget(m)
            marker.summary_save_requested.connect(self.summary_edited)
            self.widgets[m.id] = marker  # type: ignore[assignment] - answers what the view asks of a row
            return marker  # type: ignore[return-value]
        w = MessageWidget(m)
        w.regenerate_requested.connect(self.regenerate_requested)
        w.edit_requested.connect(self.edit_requested)
        w.retry_requested.connect(self.retry_requested)
        w.citation_clicked.connect(self.citation_clicked)
        w.version_requested.connect(self.version_requested)
        self.widgets[m.id] = w
        return w

    def _append_widget(self, m: Message) -> MessageWidget | None:
        if m.role == "tool":
            self._attach_tool_result(m)
            return None
        w = self._make_widget(m)
        self._lay.insertWidget(self._lay.indexOf(self.transient_label), w)  # before the note and the stretch
        self.empty_label.setVisible(False)
        if m.role == "assistant":
            for tc in m.tool_calls:
                fn = tc.get("function", {})
                w.add_tool_event(tc.get("id", ""), fn.get("name", ""), str(fn.get("arguments", "")), None, True)
        return w

    def _attach_tool_result(self, m: Message) -> None:
        for w in self.widgets.values():
            if m.tool_call_id in w.tool_cards:
                w.tool_cards[m.tool_call_id].set_result(m.content, True)

    def add_message(self, m: Message) -> MessageWidget | None:
        if m.id in self.widgets:
            self.widgets[m.id].set_message(m)
            return self.widgets[m.id]
        return self._append_widget(m)

    def message_widget(self, message_id: int) -> MessageWidget | None:
        return self.widgets.get(message_id)

    def set_transient_status(self, text: str) -> None:
        """A passing note under the last message (empty hides it)."""
        self.transient_label.setText(text)
        self.transient_label.setVisible(bool(text))
        if text and self._stick_to_bottom:
            QTimer.singleShot(0, self.scroll_to_bottom)

    def remove_from(self, message_id: int) -> None:
        """Drop the widget for ``message_id`` and every widget after it."""
        ids = list(self.widgets)
        if message_id not in ids:
            return
        for mid in ids[ids.index(message_id):]:
            w = self.widgets.pop(mid)
            self._lay.removeWidget(w)
            w.hide()  # out of view now, deleted later
            w.deleteLater()

    def remove_after(self, message_id: int) -> None:
        ids = list(self.widgets)
        if message_id in ids and ids.index(message_id) + 1 < len(ids):
            self.remove_from(ids[ids.index(message_id) + 1])

    # ---- scrolling -------------------------------------------------------

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_scroll_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24
        if value == 0 and self.more_button.isVisible() and bar.maximum() > 0:
            self.load_earlier()

    def _on_scroll_range_changed(self, _min: int, _max: int) -> None:
        if self._stick_to_bottom:
            self.scroll_to_bottom()
