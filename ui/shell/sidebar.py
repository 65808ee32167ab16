"""Conversation list: new chat, search, grouped by date, rename/export/delete."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QHBoxLayout, QLineEdit, QListView, QMenu, QPushButton, QVBoxLayout, QWidget,
)

from app.storage.conversations import Conversation, ConversationStore

ROLE_ID = Qt.ItemDataRole.UserRole + 1
ROLE_HEADER = Qt.ItemDataRole.UserRole + 2


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
                return f"{obj.title}\n{obj.snippet}" if obj.snippet != obj.title else obj.title
            return obj.title
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
        if kind == "header":
            if role == Qt.ItemDataRole.FontRole:
                f = QFont()
                f.setPointSizeF(f.pointSizeF() * 0.85)
                f.setBold(True)
                return f
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor("#8a8a8a")
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if index.isValid() and self._rows[index.row()][0] == "header":
            return Qt.ItemFlag.ItemIsEnabled
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def row_of(self, conversation_id: int) -> int:
        for i, (kind, obj) in enumerate(self._rows):
            if kind == "conv" and obj.id == conversation_id:
                return i
        return -1

    def ids(self) -> list[int]:
        return [obj.id for kind, obj in self._rows if kind == "conv"]


class Sidebar(QWidget):
    conversation_selected = Signal(int)
    new_chat_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)
    export_requested = Signal(int, str)  # id, "markdown" | "json"

    def __init__(self, store_factory: Callable[[], ConversationStore], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self._store_factory = store_factory
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        top = QHBoxLayout()
        self.new_button = QPushButton("+ New chat")
        self.new_button.setAccessibleName("New chat")
        self.new_button.clicked.connect(self.new_chat_requested)
        top.addWidget(self.new_button)
        lay.addLayout(top)
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
        self.list.setAccessibleName("Conversations")
        self.model = ConversationListModel(self)
        self.list.setModel(self.model)
        self.list.setUniformItemSizes(False)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu)
        self.list.clicked.connect(self._on_list_clicked)
        self.list.activated.connect(self._on_list_clicked)
        lay.addWidget(self.list, 1)
        self.current_id: int | None = None

    def refresh(self) -> None:
        q = self.search.text().strip()
        store = self._store_factory()
        if q:
            self.model.set_hits(store.search(q))
        else:
            self.model.set_conversations(store.list(limit=2000))
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
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_requested.emit(int(cid)))
        menu.addAction("Export as Markdown…", lambda: self.export_requested.emit(int(cid), "markdown"))
        menu.addAction("Export as JSON…", lambda: self.export_requested.emit(int(cid), "json"))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.delete_requested.emit(int(cid)))
        menu.exec(self.list.viewport().mapToGlobal(pos))
