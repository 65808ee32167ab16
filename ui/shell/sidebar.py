"""Sidebar: new chat, search, conversations grouped by date (rename/export/delete), and the
buttons for the other pages at its foot."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable

from PySide6.QtCore import (
    QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, QTimer, Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView, QLineEdit, QListView, QMenu, QPushButton, QStyle, QStyledItemDelegate,
    QStyleOptionViewItem, QVBoxLayout, QWidget,
)

from app.errors import SearchIndexDamaged, StorageError
from app.storage.conversations import MATCH_END, MATCH_START, Conversation, ConversationStore
from ui.widgets import theme
from ui.widgets.icons import icon

ROLE_ID = Qt.ItemDataRole.UserRole + 1
ROLE_HEADER = Qt.ItemDataRole.UserRole + 2
ROLE_SNIPPET = Qt.ItemDataRole.UserRole + 3


def group_name(ts: float, now: float | None = None) -> str:
    today = _dt.date.fromtimestamp(now or time.time())
    day = _dt.date.fromtimestamp(ts)
    delta = (today - day).days
    if delta <= 0:
        return "Today"
    if delta == 1:
        return "Yesterday"
    if delta < 7:
        return "Previous 7 days"
    return "Older"


def snippet_runs(snippet: str) -> list[tuple[str, bool]]:
    """Split a search snippet into (text, is_match) runs; the markers never show."""
    runs: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find(MATCH_START)
        if start < 0:
            runs.append((rest.replace(MATCH_END, ""), False))
            break
        if start:
            runs.append((rest[:start], False))
        end = rest.find(MATCH_END, start)
        end = len(rest) if end < 0 else end
        runs.append((rest[start + 1:end], True))
        rest = rest[end + 1:]
    return [(t, m) for t, m in runs if t]


def plain_snippet(snippet: str) -> str:
    return "".join(t for t, _ in snippet_runs(snippet))


class ConversationListModel(QAbstractListModel):
    """Rows are group headers and conversations (headers are not selectable)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, Any]] = []  # ("header", name) | ("conv", Conversation) | ("hit", SearchHit)

    def set_conversations(self, convs: list[Conversation]) -> None:
        self.beginResetModel()
        rows: list[tuple[str, Any]] = []
        last = None
        for c in convs:
            g = group_name(c.updated_at)
            if g != last:
                rows.append(("header", g))
                last = g
            rows.append(("conv", c))
        self._rows = rows
        self.endResetModel()

    def set_hits(self, hits: list[Any]) -> None:
        self.beginResetModel()
        self._rows = [("header", f"{len(hits)} result{'s' if len(hits) != 1 else ''}")]
        self._rows += [("hit", h) for h in hits]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        kind, obj = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if kind == "header":
                return obj
            if kind == "hit":
                snip = plain_snippet(obj.snippet)
                return f"{obj.title}\n{snip}" if snip != obj.title else obj.title
            return obj.title
        if role == ROLE_SNIPPET and kind == "hit" and plain_snippet(obj.snippet) != obj.title:
            return obj.snippet
        if role == Qt.ItemDataRole.ToolTipRole and kind != "header":
            return obj.title
        if role == ROLE_ID:
            if kind == "conv":
                return obj.id
            if kind == "hit":
                return obj.conversation_id
            return None
        if role == ROLE_HEADER:
            return kind == "header"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if index.isValid() and self._rows[index.row()][0] == "header":
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def row_of(self, conversation_id: int) -> int:
        for i, (kind, obj) in enumerate(self._rows):
            if kind in ("conv", "hit") and (obj.id if kind == "conv" else obj.conversation_id) == conversation_id:
                return i
        return -1

    def ids(self) -> list[int]:
        return [obj.id for kind, obj in self._rows if kind == "conv"]


class ConversationDelegate(QStyledItemDelegate):
    """Titles elided with "…" to the row's width; group headers small and muted; search hits
    show their snippet under the title with the matched words in the accent colour."""

    PAD = 8

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802
        fm = QFontMetrics(option.font)
        if index.data(ROLE_HEADER):
            return QSize(0, int(fm.height() * 0.9) + 14)
        lines = 2 if index.data(ROLE_SNIPPET) else 1
        return QSize(0, fm.height() * lines + 12 + (2 if lines == 2 else 0))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        t = theme.current()
        painter.save()
        rect = option.rect.adjusted(4, 1, -4, -1)
        if index.data(ROLE_HEADER):
            f = QFont(option.font)
            f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
            f.setBold(True)
            painter.setFont(f)
            painter.setPen(QColor(t.muted))
            painter.drawText(rect.adjusted(self.PAD, 6, -self.PAD, 0), Qt.AlignmentFlag.AlignLeft |
                             Qt.AlignmentFlag.AlignVCenter, str(index.data(Qt.ItemDataRole.DisplayRole)))
            painter.restore()
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hovered:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(t.selection if selected else t.surface))
            painter.drawRoundedRect(rect, theme.RADIUS_S, theme.RADIUS_S)
        fm = QFontMetrics(option.font)
        inner = rect.adjusted(self.PAD, 6, -self.PAD, -4)
        title = str(index.data(Qt.ItemDataRole.ToolTipRole) or "")
        painter.setFont(option.font)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        line = QRect(inner.left(), inner.top(), inner.width(), fm.height())
        painter.drawText(line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(title, Qt.TextElideMode.ElideRight, inner.width()))
        snippet = index.data(ROLE_SNIPPET)
        if snippet:
            small = QFont(option.font)
            small.setPointSizeF(max(7.0, small.pointSizeF() * 0.9))
            sfm = QFontMetrics(small)
            x, y = inner.left(), inner.top() + fm.height() + 2
            room = inner.width()
            for text, match in snippet_runs(" ".join(str(snippet).split())):
                f = QFont(small)
                f.setBold(match)
                painter.setFont(f)
                mfm = QFontMetrics(f)
                shown = mfm.elidedText(text, Qt.TextElideMode.ElideRight, room)
                painter.setPen(QColor(t.accent if match else t.muted))
                painter.drawText(QRect(x, y, room, sfm.height()), Qt.AlignmentFlag.AlignLeft, shown)
                w = mfm.horizontalAdvance(shown)
                x += w
                room -= w
                if shown != text or room <= 0:
                    break
        painter.restore()


class Sidebar(QWidget):
    conversation_selected = Signal(int)
    new_chat_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)
    export_requested = Signal(int, str)  # id, "markdown" | "json"
    index_damaged = Signal(str)
    storage_failed = Signal(str)

    def __init__(self, store_factory: Callable[[], ConversationStore], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setMinimumWidth(180)
        self._store_factory = store_factory
        lay = QVBoxLayout(self)
        lay.setContentsMargins(theme.SPACE_S, theme.SPACE_M, theme.SPACE_S, theme.SPACE_S)
        lay.setSpacing(theme.SPACE_S)
        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("newChatButton")
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip(f"New chat ({QKeySequence(QKeySequence.StandardKey.New).toString()})")
        self.new_button.clicked.connect(self.new_chat_requested)
        lay.addWidget(self.new_button)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats (Ctrl+K)")
        self.search.setAccessibleName("Search conversations")
        self.search.setClearButtonEnabled(True)
        lay.addWidget(self.search)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.list = QListView()
        self.list.setObjectName("conversationList")
        self.list.setAccessibleName("Conversations")
        self.model = ConversationListModel(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(ConversationDelegate(self.list))
        self.list.setUniformItemSizes(False)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setMouseTracking(True)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu)
        self.list.clicked.connect(self._on_list_clicked)
        self.list.activated.connect(self._on_list_clicked)
        lay.addWidget(self.list, 1)
        self.nav = QVBoxLayout()
        self.nav.setSpacing(2)
        lay.addLayout(self.nav)
        self.nav_buttons: list[tuple[int, QPushButton, QWidget]] = []
        self.current_id: int | None = None
        theme.notifier().changed.connect(self._retint)
        self._retint(theme.current())

    def _retint(self, t: theme.Tokens) -> None:
        self.new_button.setIcon(icon("new-chat", t.text))
        self.search.setStyleSheet("")  # follows the app stylesheet
        for _, b, _page in self.nav_buttons:
            b.setIcon(icon(str(b.property("iconName")), t.muted))
        self.list.viewport().update()

    # ---- pages -----------------------------------------------------------

    def add_nav(self, title: str, icon_name: str, on_click: Callable[[], None], *, order: int, page: QWidget,
                shortcut: str = "") -> QPushButton:
        b = QPushButton(title)
        b.setObjectName("navButton")
        b.setCheckable(True)
        b.setAccessibleName(f"Open {title}")
        b.setToolTip(f"{title} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
                     if shortcut else title)
        b.setProperty("iconName", icon_name)
        b.setIcon(icon(icon_name, theme.current().muted))
        b.clicked.connect(on_click)
        self.nav_buttons.append((order, b, page))
        self.nav_buttons.sort(key=lambda item: item[0])
        for _, btn, _page in self.nav_buttons:
            self.nav.removeWidget(btn)
        for _, btn, _page in self.nav_buttons:
            self.nav.addWidget(btn)
        return b

    def set_current_page(self, page: QWidget) -> None:
        for _, b, p in self.nav_buttons:
            b.setChecked(p is page)

    # ---- list ------------------------------------------------------------

    def refresh(self) -> None:
        q = self.search.text().strip()
        store = self._store_factory()
        try:
            if q:
                self.model.set_hits(store.search(q))
            else:
                self.model.set_conversations(store.list(limit=2000))
        except SearchIndexDamaged as exc:
            self.model.set_hits([])
            self.index_damaged.emit(str(exc))
        except StorageError as exc:
            self.model.set_hits([])
            self.storage_failed.emit(str(exc))
        self.select(self.current_id, emit=False)

    def select(self, conversation_id: int | None, emit: bool = True) -> None:
        self.current_id = conversation_id
        if conversation_id is None:
            self.list.clearSelection()
            return
        row = self.model.row_of(conversation_id)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))
        if emit:
            self.conversation_selected.emit(conversation_id)

    def keyPressEvent(self, e: Any) -> None:  # noqa: N802 - Qt override
        if e.key() == Qt.Key.Key_Escape and self.search.text():
            self.search.clear()
            return
        super().keyPressEvent(e)

    def _on_list_clicked(self, index: QModelIndex) -> None:
        cid = index.data(ROLE_ID)
        if cid is not None:
            self.current_id = int(cid)
            self.conversation_selected.emit(int(cid))

    def _on_list_context_menu(self, pos: Any) -> None:
        index = self.list.indexAt(pos)
        cid = index.data(ROLE_ID) if index.isValid() else None
        if cid is None:
            return
        # A right-click opens the chat it is on, so the menu acts on what the user sees.
        if int(cid) != self.current_id:
            self.list.setCurrentIndex(index)
            self._on_list_clicked(index)
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_requested.emit(int(cid)))
        menu.addAction("Export as Markdown…", lambda: self.export_requested.emit(int(cid), "markdown"))
        menu.addAction("Export as JSON…", lambda: self.export_requested.emit(int(cid), "json"))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(int(cid)))
        self.context_menu = menu
        menu.popup(self.list.viewport().mapToGlobal(pos))
