"""The main window: sidebar, chat column, header with the model, status bar."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog, QInputDialog, QLabel, QMainWindow, QMessageBox, QPushButton, QSplitter, QStackedWidget,
    QVBoxLayout, QWidget,
)

from app.context import AppContext
from app.errors import HearthError
from app.harmony.tools import default_registry
from app.models.units import format_bytes
from app.storage.conversations import Message
from ui.chat.chat_settings import apply_new_chat_defaults
from ui.chat.chat_view import ChatView
from ui.chat.composer import Composer
from ui.chat.controller import ChatController
from ui.chat.header import ChatHeader
from ui.chat.long_chats import LongChats
from ui.chat.model_picker import PickerEntry
from ui.shell.sidebar import Sidebar
from ui.widgets.theme import set_style_property

if TYPE_CHECKING:
    from ui.documents.feature import DocumentsFeature
    from ui.models.page import ModelsPage
    from ui.pages.hardware import HardwarePage
    from ui.pages.settings import SettingsPage

log = logging.getLogger(__name__)

NO_MODEL_TEXT = (
    "<h2>Welcome to Hearth</h2>"
    "<p>No model is loaded yet. Choose one in the model menu above, use <b>File › Open model…</b>, or "
    "drop a <code>.gguf</code> file on this window to start chatting. Everything runs on this computer; "
    "nothing is sent anywhere.</p>"
)
NO_MODEL_ERROR = "No model is loaded. Choose one in the model menu at the top (or File › Open model…)."
READY_TEXT = "Start the conversation below."


def _no_autoload() -> bool:
    """HEARTH_NO_AUTOLOAD=1 starts without loading the last model (tests, benchmarks)."""
    return os.environ.get("HEARTH_NO_AUTOLOAD", "") not in ("", "0")


def ask_title(parent: QWidget, title: str) -> tuple[str, bool]:
    """The rename dialog, wide enough for a long title."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle("Rename chat")
    dialog.setLabelText("Title:")
    dialog.setTextValue(title)
    dialog.resize(max(460, dialog.sizeHint().width()), dialog.sizeHint().height())
    ok = dialog.exec() == QInputDialog.DialogCode.Accepted
    return dialog.textValue(), ok


class MainWindow(QMainWindow):
    conversation_changed = Signal(object)  # the open conversation's id, or None for a new chat
    files_dropped = Signal(list)  # paths dropped on the window that are not models (documents attach them)
    closing = Signal()  # the window got its close event; pages stop their jobs before the engine goes

    def __init__(self, ctx: AppContext, *, initial_model: str | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.setWindowTitle("Hearth")
        self.setAcceptDrops(True)
        self.resize(1100, 760)
        self.controller = ChatController(ctx, self)
        self.controller.tools_factory = default_registry
        self.conversation_id: int | None = None
        self._editing_message_id: int | None = None
        self._deleted: tuple[Any, list[Message], list[dict[str, Any]]] | None = None
        self._after_load: list[Any] = []  # what to do once the model being loaded is in (Retry)
        self._loading = False
        self._page_actions: list[tuple[int, QAction]] = []
        # The pages build_window (ui/shell/app.py) adds; None in a bare window (tests, benchmarks).
        self.documents: DocumentsFeature | None = None
        self.hardware_page: HardwarePage | None = None
        self.settings_page: SettingsPage | None = None
        self.models_page: ModelsPage | None = None
        self._build()
        self._connect()
        self.long_chats = LongChats(self)  # context markers, the meter's details, presets and chat settings
        self.sidebar.refresh()
        self._update_actions()
        self._restore_window()
        if initial_model:
            QTimer.singleShot(0, lambda: self.open_model(initial_model))
        elif ctx.settings.load_last_model and ctx.settings.last_model \
                and Path(ctx.settings.last_model).is_file() and not _no_autoload():
            last = ctx.settings.last_model
            QTimer.singleShot(0, lambda: self.open_model(last))

    # ---- layout ----------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = Sidebar(lambda: self.ctx.store)
        self.chat_view = ChatView(lambda: self.ctx.store)
        self.chat_view.set_empty_text(NO_MODEL_TEXT)
        self.composer = Composer()

        self.header = ChatHeader()
        self.model_picker = self.header.picker
        self.model_picker.set_entries(self._recent_entries())
        self.model_label = self.header.state_label
        self.load_progress = self.header.progress
        self.reload_button = self.header.reload_button
        self.eject_button = self.header.eject_button

        self.edit_banner = QLabel("Editing a message: Enter resends it and replaces the replies after it. Esc cancels.")
        self.edit_banner.setObjectName("editBanner")
        self.edit_banner.setVisible(False)

        chat_page = QWidget()
        chat_page.setObjectName("chatPage")
        chat_page.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        cl = QVBoxLayout(chat_page)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.header)
        cl.addWidget(self.chat_view, 1)
        cl.addWidget(self.edit_banner)
        cl.addWidget(self.composer)

        self.pages = QStackedWidget()
        self.pages.addWidget(chat_page)
        self.chat_page = chat_page
        self.splitter = QSplitter()
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 840])
        self.setCentralWidget(self.splitter)

        sb = self.statusBar()
        self.status_backend = QLabel("No model")
        self.status_memory = QLabel("")
        self.status_offline = QLabel("Offline" if self.ctx.settings.offline else "")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setVisible(False)
        self.undo_button.setAccessibleName("Undo delete")
        sb.addPermanentWidget(self.undo_button)
        sb.addPermanentWidget(self.status_backend)
        sb.addPermanentWidget(self.status_memory)
        sb.addPermanentWidget(self.status_offline)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(10000)
        self._undo_timer.timeout.connect(self._forget_deleted)

        m = self.menuBar()
        fm = m.addMenu("&File")
        self.action_new = self._action(fm, "&New chat", self.new_chat, QKeySequence.StandardKey.New)
        self._action(fm, "&Open model…", self.choose_model, QKeySequence("Ctrl+O"))
        self.action_unload = self._action(fm, "&Unload model", self.controller.unload)
        fm.addSeparator()
        self._action(fm, "Export chat as &Markdown…", lambda: self.export(self.conversation_id, "markdown"))
        self._action(fm, "Export chat as &JSON…", lambda: self.export(self.conversation_id, "json"))
        fm.addSeparator()
        self._action(fm, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        cm = m.addMenu("&Chat")
        self._action(cm, "&Search chats", self._focus_search, QKeySequence("Ctrl+K"))
        self._action(cm, "&Focus message box", self.composer.focus, QKeySequence("Ctrl+L"))
        self.action_stop = self._action(cm, "S&top generating", self.controller.stop, QKeySequence("Ctrl+."))
        self.action_regenerate = self._action(cm, "&Regenerate reply", self.regenerate, QKeySequence("Ctrl+R"))
        self.view_menu = m.addMenu("&View")
        self.add_page("&Chat", chat_page, "Ctrl+1", order=1, nav=False)
        hm = m.addMenu("&Help")
        self._action(hm, "Open &logs folder", self.open_logs)
        self._action(hm, "&About Hearth", self.about)
        # Esc stops a reply wherever the focus is (a button, the sidebar, the transcript).
        self._escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_escape,
                                 context=Qt.ShortcutContext.WindowShortcut)

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(shortcut)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def add_page(self, title: str, widget: QWidget, shortcut: str | None = None, *, order: int | None = None,
                 nav: bool = True, icon_name: str = "") -> None:
        """Add a page (Models, Hardware, Settings): in the View menu, ordered as their shortcuts
        (Ctrl+1, 2, 3, then Ctrl+,), and as a button at the foot of the sidebar."""
        if order is None:
            digit = (shortcut or "")[-1:]
            order = int(digit) if digit.isdigit() else 90
        if self.pages.indexOf(widget) < 0:
            self.pages.addWidget(widget)
        a = QAction(title, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda: self.show_page(widget))
        self._page_actions.append((order, a))
        self._page_actions.sort(key=lambda pair: pair[0])
        for _, act in self._page_actions:
            self.view_menu.removeAction(act)
        for _, act in self._page_actions:
            self.view_menu.addAction(act)
        if nav:
            self.sidebar.add_nav(title.replace("&", ""), icon_name or title.replace("&", "").lower(),
                                 lambda: self.show_page(widget), order=order, page=widget,
                                 shortcut=shortcut or "")

    def show_page(self, widget: QWidget) -> None:
        self.pages.setCurrentWidget(widget)
        self.sidebar.set_current_page(widget)

    def _connect(self) -> None:
        c = self.controller
        c.model_loading.connect(self._on_controller_model_loading)
        c.model_loaded.connect(self._on_controller_model_loaded)
        c.model_failed.connect(self._on_controller_model_failed)
        c.model_unloaded.connect(self._on_controller_model_unloaded)
        c.reply_started.connect(self._on_controller_reply_started)
        c.reply_delta.connect(self._on_controller_reply_delta)
        c.tool_event.connect(self._on_controller_tool_event)
        c.reply_finished.connect(self._on_controller_reply_finished)
        c.reply_failed.connect(self._on_controller_reply_failed)
        c.busy_changed.connect(self._on_controller_busy_changed)
        c.error.connect(self.show_error)
        c.notice.connect(lambda text: self.statusBar().showMessage(text, 20000))
        self.sidebar.conversation_selected.connect(self.open_conversation)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.sidebar.rename_requested.connect(self.rename)
        self.sidebar.delete_requested.connect(self.delete)
        self.sidebar.export_requested.connect(self.export)
        self.composer.send_requested.connect(self.send)
        self.composer.stop_requested.connect(self._on_composer_stop)
        self.composer.reasoning_changed.connect(self._on_composer_reasoning_changed)
        self.chat_view.regenerate_requested.connect(lambda _mid: self.regenerate())
        self.chat_view.retry_requested.connect(lambda _mid: self.regenerate())
        self.chat_view.edit_requested.connect(self.start_edit)
        self.chat_view.version_requested.connect(self.show_version)
        self.controller.tokens_streamed.connect(self.composer.add_streamed_tokens)
        self.controller.index_damaged.connect(self.offer_index_rebuild)
        self.sidebar.index_damaged.connect(self.offer_index_rebuild)
        self.sidebar.storage_failed.connect(self.show_error)
        self.model_picker.model_chosen.connect(self.open_model)
        self.model_picker.open_file_requested.connect(self.choose_model)
        self.model_picker.manage_requested.connect(self._show_models_page)
        self.eject_button.clicked.connect(self.controller.unload)
        self.reload_button.clicked.connect(self.reload_model)
        self.undo_button.clicked.connect(self.undo_delete)

    # ---- models ----------------------------------------------------------

    def choose_model(self) -> None:
        start = str(self.ctx.models_dir) if Path(self.ctx.models_dir).exists() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, "GGUF models (*.gguf);;All files (*)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        self.reload_button.setVisible(False)
        self.model_picker.set_current(path)
        self._loading = True
        self._update_actions()
        self.controller.load_model(path)

    def reload_model(self) -> None:
        path = self.controller.model_path or self.ctx.settings.last_model
        if path:
            self.open_model(path)

    def set_model_entries(self, entries: list[PickerEntry]) -> None:
        """The picker's list: installed models (from the Models page), then recently opened files."""
        self.model_picker.set_entries([*entries, *self._recent_entries()])

    def _recent_entries(self) -> list[PickerEntry]:
        recent = self.ctx.settings.extra.get("recent_models", [])
        return [PickerEntry(p, Path(p).name, "recently opened") for p in recent
                if isinstance(p, str) and p]

    def _show_models_page(self) -> None:
        if self.models_page is not None:
            self.show_page(self.models_page)

    def _on_controller_model_loading(self, path: str, frac: float) -> None:
        self._set_state(f"Loading {Path(path).name}…")
        self.model_label.setToolTip(path)
        self.load_progress.setVisible(True)
        self.load_progress.setValue(int(frac * 100))
        self._loading = True
        self._update_actions()

    def _on_controller_model_loaded(self, info: dict) -> None:
        self.load_progress.setVisible(False)
        self._loading = False
        name = info.get("name") or Path(info.get("path", "")).name
        choice = self.controller.load_choice
        backend = "GPU" if info.get("gpu_offload") and (choice and choice.params.get("n_gpu_layers")) else "CPU"
        remote = info.get("architecture") == "remote"
        if remote:
            backend = f"remote ({info.get('server') or 'server'})"
        self._set_state("● connected · " + str(info.get("server") or "server") if remote
                        else "● loaded · " + backend, "loaded")
        self.model_label.setToolTip(f"{name}\n{info.get('path', '')}")
        if info.get("path"):
            self.model_picker.set_current(str(info["path"]))
            self.model_picker.set_loaded(str(info["path"]))
            # the file just loaded is now the first recent one
            self.model_picker.set_entries([*self.model_picker.entries, *self._recent_entries()])
        self.status_backend.setText(f"Backend: {backend}")
        rss = info.get("rss_bytes") or 0
        self.status_memory.setText(f"Model memory: {format_bytes(rss)}" if rss else "")
        # A remote model gets the reasoning choice too: it is sent as reasoning_effort, which
        # gpt-oss servers honour and others ignore.
        harmony = info.get("architecture") in ("gpt-oss", "remote")
        self.composer.set_reasoning_visible(harmony)
        self._show_context_of(self.conversation_id, info.get("n_ctx"))
        self.chat_view.set_empty_text(READY_TEXT if not self.chat_view.widgets else "")
        self._update_actions()
        pending, self._after_load = self._after_load, []
        for action in pending:
            action()

    def _set_state(self, text: str, state: str = "") -> None:
        """The header's model state ("● loaded · CPU" in green, a stopped process in red)."""
        self.model_label.setText(text)
        set_style_property(self.model_label, "state", state)

    def _on_controller_model_failed(self, path: str, message: str) -> None:
        self.load_progress.setVisible(False)
        self._loading = False
        self._after_load.clear()
        self._set_state("No model loaded")
        self.model_picker.set_current(None)
        self.model_picker.set_loaded(None)
        self._update_actions()
        self.show_error(message)

    def _on_controller_model_unloaded(self, reason: str) -> None:
        self.status_memory.setText("")
        self.model_picker.set_loaded(None)
        if reason:
            self._set_state("⚠ The model process stopped", "failed")
            self.model_label.setToolTip(reason)
            self.reload_button.setVisible(True)
        else:
            self._set_state("No model loaded")
            self.model_picker.set_current(None)
        self._update_actions()

    def _update_actions(self) -> None:
        """Stop, Regenerate, Unload and Send are enabled only when they can do something."""
        c = self.controller
        loaded = c.loaded and not self._loading
        busy = c.generating
        self.action_stop.setEnabled(busy)
        can_answer = (loaded or bool(c.model_path)) and not busy and self.conversation_id is not None
        self.action_regenerate.setEnabled(can_answer)
        self.action_unload.setEnabled(loaded)
        self.eject_button.setEnabled(loaded)
        self.composer.set_can_send(loaded, "Load a model first (the model menu at the top)")

    def _show_context_of(self, conversation_id: int | None, n_ctx: int | None = None) -> None:
        """The meter for ``conversation_id``: the context its last reply used, of the loaded model's."""
        total = n_ctx or (self.controller.model_info or {}).get("n_ctx")
        used = 0
        if conversation_id is not None:
            for m in reversed(self.ctx.store.messages(conversation_id, limit=6)):
                if m.stats and m.stats.get("context_used"):
                    used = int(m.stats["context_used"])
                    total = total or m.stats.get("n_ctx")
                    break
        self.composer.set_context(used, total)
        if not used and total:
            # No reply has counted yet, but the instructions and tool definitions are already
            # in the model's view (over a thousand tokens with gpt-oss's tools): count them.
            self.controller.count_base(conversation_id, self.composer.effort,
                                       lambda n: self._show_base_context(conversation_id, n))

    def _show_base_context(self, conversation_id: int | None, n: int | None) -> None:
        used, total = self.composer.context
        if n and conversation_id == self.conversation_id and not used and not self.controller.generating:
            self.composer.set_context(n, total)

    # ---- conversations ---------------------------------------------------

    def new_chat(self) -> None:
        self.conversation_id = None
        self.sidebar.select(None, emit=False)
        self.chat_view.show_conversation(None)
        self.chat_view.set_empty_text(NO_MODEL_TEXT if not self.controller.loaded else READY_TEXT)
        self.composer.set_reasoning(self.ctx.settings.reasoning_effort, self.composer.reasoning.isVisible())
        self._show_context_of(None)
        self.composer.focus()
        self._update_actions()
        self.conversation_changed.emit(None)

    def open_conversation(self, conversation_id: int) -> None:
        if self.controller.generating and conversation_id != self.conversation_id:
            self.controller.stop()
        self.cancel_edit()
        self.conversation_id = conversation_id
        try:
            conv = self.ctx.store.get(conversation_id)
        except KeyError:
            self.new_chat()
            return
        self.show_page(self.chat_page)
        self.chat_view.show_conversation(conversation_id)
        self.composer.set_reasoning(conv.reasoning_effort, self.composer.reasoning.isVisible())
        self._show_context_of(conversation_id)
        self.ctx.settings.extra["last_conversation"] = conversation_id
        self.sidebar.select(conversation_id, emit=False)
        self._update_actions()
        self.conversation_changed.emit(conversation_id)

    def ensure_conversation(self) -> int:
        """The open conversation's id, creating the conversation if this is a new chat."""
        return self._ensure_conversation()

    def _ensure_conversation(self) -> int:
        if self.conversation_id is None:
            conv = self.ctx.store.create(
                model=self.controller.model_path, reasoning_effort=self.ctx.settings.reasoning_effort,
                system_prompt=self.ctx.settings.system_prompt,
            )
            apply_new_chat_defaults(self.ctx, conv.id)
            self.conversation_id = conv.id
            self.ctx.store.update(conv.id, reasoning_effort=self.composer.effort)
            self.chat_view.conversation_id = conv.id
            self.sidebar.refresh()
            self.sidebar.select(conv.id, emit=False)
            self.conversation_changed.emit(conv.id)
        return self.conversation_id

    def send(self, text: str) -> None:
        if not self.controller.loaded:
            self.show_error(NO_MODEL_ERROR)
            return
        if self._editing_message_id is not None:
            mid = self._editing_message_id
            cid = self._ensure_conversation()
            if self.controller.edit_and_resend(cid, mid, text):
                # The edited message becomes a new version: its bubble and the replies after it
                # go, and the new question and reply come in with the turn.
                self.chat_view.remove_from(mid)
                self.composer.set_text("")
                self.cancel_edit()
            return
        cid = self._ensure_conversation()
        if self.controller.send(cid, text):
            self.composer.set_text("")  # the text is committed to the database by the turn
            self.sidebar.select(cid, emit=False)

    def regenerate(self) -> None:
        """A new version of the last reply; after a crash, the model is loaded again first."""
        if self.conversation_id is None or self.controller.generating:
            return
        if not self.controller.loaded:
            path = self.controller.model_path or self.ctx.settings.last_model
            if not path:
                self.show_error(NO_MODEL_ERROR)
                return
            if not self._loading:
                self.statusBar().showMessage(f"Loading {Path(path).name} again to retry…", 10000)
                self.open_model(path)
            self._after_load.append(self.regenerate)
            return
        msgs = self.ctx.store.messages(self.conversation_id)
        last_user = max((m for m in msgs if m.role == "user"), key=lambda m: m.seq, default=None)
        if last_user is None:
            return
        if self.controller.regenerate(self.conversation_id):
            self.chat_view.remove_after(last_user.id)

    def show_version(self, seq: int, position: int) -> None:
        """Flip the fork at message ``seq`` to version ``position``; the chat continues from it."""
        if self.conversation_id is None or self.controller.generating:
            return
        try:
            self.ctx.store.select_version(self.conversation_id, seq, position)
        except (HearthError, IndexError) as exc:
            self.show_error(f"Could not show that version: {exc}")
            return
        self.chat_view.show_conversation(self.conversation_id, keep_seq=seq)
        self._show_context_of(self.conversation_id)

    def start_edit(self, message_id: int) -> None:
        if self.controller.generating:
            return
        m = self.ctx.store.get_message(message_id)
        self._editing_message_id = message_id
        self.composer.set_text(m.content)
        self.edit_banner.setVisible(True)
        self.composer.focus()

    def cancel_edit(self) -> None:
        if self._editing_message_id is not None:
            self._editing_message_id = None
            self.edit_banner.setVisible(False)
            self.composer.set_text("")

    def _on_composer_stop(self) -> None:
        if self.controller.generating:
            self.controller.stop()
        else:
            self.cancel_edit()

    def keyPressEvent(self, e: Any) -> None:  # noqa: N802 - Qt override
        # The Esc shortcut covers an active window; a key no widget took still ends up here.
        if e.key() == Qt.Key.Key_Escape:
            self._on_escape()
            return
        super().keyPressEvent(e)

    def _on_escape(self) -> None:
        """Esc anywhere: stop the reply; else leave editing; else clear the search."""
        if self.controller.generating:
            self.controller.stop()
        elif self._editing_message_id is not None:
            self.cancel_edit()
        elif self.sidebar.search.text():
            self.sidebar.search.clear()
            self.composer.focus()

    def _on_composer_reasoning_changed(self, effort: str) -> None:
        if self.conversation_id is not None:
            self.ctx.store.update(self.conversation_id, reasoning_effort=effort)

    def rename(self, conversation_id: int) -> None:
        conv = self.ctx.store.get(conversation_id)
        title, ok = ask_title(self, conv.title)
        if ok and title.strip():
            self.ctx.store.rename(conversation_id, title)
            self.sidebar.refresh()

    def delete(self, conversation_id: int) -> None:
        if self.controller.generating and conversation_id == self.conversation_id:
            self.controller.stop()
        store = self.ctx.store
        conv = store.get(conversation_id)
        self._deleted = (conv, store.messages(conversation_id), store.attachment_rows(conversation_id))
        store.delete(conversation_id)
        if conversation_id == self.conversation_id:
            self.new_chat()
        self.sidebar.refresh()
        self.statusBar().showMessage(f"Deleted “{conv.title}”", 10000)
        self.undo_button.setVisible(True)
        self._undo_timer.start()

    def undo_delete(self) -> None:
        if self._deleted is None:
            return
        conv, msgs, attachments = self._deleted
        self.ctx.store.restore(conv, msgs, attachments)
        self._forget_deleted()
        self.sidebar.refresh()
        self.sidebar.select(conv.id)

    def _forget_deleted(self) -> None:
        self._deleted = None
        self.undo_button.setVisible(False)
        self.statusBar().clearMessage()

    def export(self, conversation_id: int | None, fmt: str) -> None:
        if conversation_id is None:
            return
        conv = self.ctx.store.get(conversation_id)
        suffix = ".md" if fmt == "markdown" else ".json"
        safe = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in conv.title).strip() or "chat"
        path, _ = QFileDialog.getSaveFileName(self, "Export chat", str(Path.home() / f"{safe}{suffix}"))
        if not path:
            return
        text = (self.ctx.store.export_markdown(conversation_id) if fmt == "markdown"
                else self.ctx.store.export_json(conversation_id))
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            self.show_error(f"Could not write {path}: {exc.strerror or exc}")

    # ---- streaming -------------------------------------------------------

    def _on_controller_reply_started(self, conversation_id: int, message_id: int) -> None:
        if conversation_id != self.conversation_id:
            return
        if self.chat_view.conversation_id != conversation_id:
            self.chat_view.show_conversation(conversation_id)
        # the user message (if new) and the empty reply
        for m in self.ctx.store.messages(conversation_id, limit=3):
            if m.id not in self.chat_view.widgets:
                self.chat_view.add_message(m)
        self.chat_view.refresh_versions()
        self.chat_view.follow_reply()
        self.sidebar.refresh()

    def _on_controller_reply_delta(self, message_id: int, channel: str, text: str) -> None:
        w = self.chat_view.message_widget(message_id)
        if w is not None:
            w.append(channel, text)

    def _on_controller_tool_event(self, ev: Any) -> None:
        w = self.chat_view.message_widget(ev.message_id)
        if w is not None:
            w.add_tool_event(ev.call_id, ev.name, ev.arguments, ev.result, ev.ok)

    def _on_controller_reply_finished(self, message: Message, stats: dict) -> None:
        w = self.chat_view.message_widget(message.id)
        if w is not None:
            w.set_message(message)
        self.composer.set_context(stats.get("context_used"), stats.get("n_ctx"))
        self.chat_view.refresh_versions()
        self.sidebar.refresh()

    def _on_controller_reply_failed(self, message_id: Any, error: str, kind: str) -> None:
        if message_id is not None:
            w = self.chat_view.message_widget(int(message_id))
            if w is not None:
                try:
                    w.set_message(self.ctx.store.get_message(int(message_id)))
                except KeyError:
                    w.set_status("error", error)
        if kind in ("context", "empty") or message_id is None:
            self.show_error(error)

    def _on_controller_busy_changed(self, busy: bool) -> None:
        self.composer.set_busy(busy)
        self._update_actions()

    # ---- misc ------------------------------------------------------------

    def _focus_search(self) -> None:
        self.sidebar.search.setFocus()
        self.sidebar.search.selectAll()

    def offer_index_rebuild(self, message: str) -> None:
        """The history's search index is damaged: say so, and rebuild it if the user agrees."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Hearth", message, QMessageBox.StandardButton.Cancel, self)
        rebuild = box.addButton("Rebuild search index", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(rebuild)
        box.setModal(False)
        box.buttonClicked.connect(lambda button: self._rebuild_index() if button is rebuild else None)
        self._last_error_box = box
        box.show()

    def _rebuild_index(self) -> None:
        try:
            self.ctx.store.rebuild_search_index()
        except HearthError as exc:
            self.show_error(str(exc))
            return
        self.statusBar().showMessage("The search index was rebuilt.", 10000)
        self.sidebar.refresh()

    def show_error(self, message: str) -> None:
        log.warning("shown to user: %s", message)
        self.statusBar().showMessage(message, 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Hearth", message, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self._last_error_box = box

    def open_logs(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.ctx.paths.log_dir)))

    def about(self) -> None:
        from app import __version__

        QMessageBox.about(self, "About Hearth",
                          f"<b>Hearth {__version__}</b><p>Private, offline chat with gpt-oss and other GGUF "
                          "models. Nothing you type leaves this computer.</p>")

    # ---- drag and drop ---------------------------------------------------

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        models = [p for p in paths if p.lower().endswith(".gguf")]
        if models:
            self.open_model(models[0])
            e.acceptProposedAction()
            return
        others = [p for p in paths if not p.lower().endswith(".gguf")]
        if others:
            self.files_dropped.emit(others)
            e.acceptProposedAction()

    # ---- window state ----------------------------------------------------

    def _qsettings(self) -> QSettings:
        return QSettings(str(self.ctx.paths.config_dir / "window.ini"), QSettings.Format.IniFormat)

    def _restore_window(self) -> None:
        qs = self._qsettings()
        geo = qs.value("geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        split = qs.value("splitter")
        if isinstance(split, QByteArray):
            self.splitter.restoreState(split)
        last = self.ctx.settings.extra.get("last_conversation")
        if isinstance(last, int):
            try:
                self.ctx.store.get(last)
            except KeyError:
                return
            self.sidebar.select(last)

    def showEvent(self, e: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(e)
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            # Qt gives a new window's focus to its first button ("New chat", where a space
            # clicks it and letters vanish): typing right away goes to the message box.
            QTimer.singleShot(0, self._focus_composer)

    def _focus_composer(self) -> None:
        if self.pages.currentWidget() is self.chat_page and not self.composer.edit.hasFocus():
            self.composer.focus()

    def closeEvent(self, e: Any) -> None:  # noqa: N802 - Qt override
        self.closing.emit()
        if self.conversation_id is not None:
            self.ctx.settings.extra["last_conversation"] = self.conversation_id
        qs = self._qsettings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("splitter", self.splitter.saveState())
        qs.sync()
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            log.warning("%s", exc)
        self.controller.shutdown()
        super().closeEvent(e)
