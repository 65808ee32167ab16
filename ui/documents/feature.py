"""Chatting with documents in the main window: attach (drop, "+" button, menu),
per-file progress and errors, attachment chips, citation previews, and the
hook that puts the documents into each chat turn.

``DocumentsFeature(win)`` wires it all onto a MainWindow (build_window in
ui/shell/app.py makes one, calls ``start`` and connects the window's
``files_dropped`` to ``attach_files``); the work itself runs in ui/documents/jobs.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QMimeData, QObject, Signal
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from app.documents.embedder import Embedder, find_embedding_model
from app.documents.errors import PasswordRequired
from app.documents.extract import SUPPORTED_SUMMARY
from app.documents.index import DocumentIndex
from app.documents.models import IngestCancelled, IngestDone, IngestFailed, IngestProgress
from ui.documents.attach import AttachChooser
from ui.documents.jobs import BatchQueued, DocumentJobs, IngestTask, TaskEvent
from ui.documents.passwords import PasswordPrompts
from ui.documents.preview import CitationPreview
from ui.documents.turn import DocumentTurns
from ui.documents.widgets import AttachmentsBar, DropOverlay, phase_text

if TYPE_CHECKING:
    from ui.shell.main_window import MainWindow

log = logging.getLogger(__name__)

DROP_TEXT = "Drop to add to this chat"
DROP_MODEL_TEXT = "Drop to open this model"
NOTICE_MS = 15000


class DocumentsFeature(QObject):
    """The window's documents: owns the index, the jobs, the bar, the overlay and the preview."""

    attachments_changed = Signal(object)  # conversation id (or None) whose chips were just shown
    ingest_progress = Signal(object)  # IngestTask (its fraction and phase were updated)
    ingest_finished = Signal(object, object)  # IngestTask, its last event

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        # With an embedding GGUF installed, passages also get vectors (hybrid ranking);
        # its worker starts on first use, from the ingestion thread.
        emb_path = find_embedding_model(win.ctx.settings, Path(win.ctx.models_dir))
        self.embedder = Embedder(emb_path) if emb_path is not None else None
        self.index = DocumentIndex(win.ctx.db, embed_fn=self.embedder,
                                   embed_model=self.embedder.model_name if self.embedder else None)
        self.jobs = DocumentJobs(self.index, self)
        self.tasks: dict[int, IngestTask] = {}
        self.notices: dict[int, tuple[int, str]] = {}  # id -> (conversation id, message)
        self._next_notice = 1
        self._removing: set[tuple[int, int]] = set()  # (conversation id, document id)
        self.preview: CitationPreview | None = None
        self._preview_token: object | None = None
        self._shown: int | None = None
        self._synced = False
        self._closed = False

        self.bar = AttachmentsBar()
        lay = win.chat_page.layout()
        lay.insertWidget(lay.indexOf(win.composer), self.bar)
        self.overlay = DropOverlay(win.chat_page)
        self.chooser = AttachChooser(win, win.ctx.settings.extra)
        self.chooser.chosen.connect(self.attach_files)
        chat_menu = next((a.menu() for a in win.menuBar().actions() if a.text() == "&Chat" and a.menu()), None)
        if chat_menu is not None:
            chat_menu.addSeparator()
            chat_menu.addActions([self.chooser.action_files, self.chooser.action_folder])
        self.turns = DocumentTurns(self.index, win.controller, win.ctx.settings)
        self.passwords = PasswordPrompts(win)
        self.passwords.given.connect(self._on_password_given)
        self.passwords.refused.connect(self._on_password_refused)

        self.bar.remove_requested.connect(self.remove_attachment)
        self.bar.cancel_requested.connect(self.cancel_task)
        self.bar.notice_dismissed.connect(self.dismiss_notice)
        win.composer.attach_requested.connect(lambda: self.chooser.popup_above(win.composer.attach_button))
        win.chat_view.citation_clicked.connect(self.open_citation)
        win.sidebar.conversation_selected.connect(lambda _cid: self.sync())
        win.sidebar.new_chat_requested.connect(self.sync)
        win.sidebar.delete_requested.connect(lambda _cid: self.sync())
        win.action_new.triggered.connect(self.sync)
        win.controller.reply_started.connect(lambda _cid, _mid: self.sync())
        win.conversation_changed.connect(lambda _cid: self.sync())
        win.installEventFilter(self)
        self._composer_viewport = win.composer.edit.viewport()
        self._composer_viewport.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def start(self) -> None:
        """Hook into the chat turns, show the open conversation's documents, and clean
        up what an interrupted ingestion left (in the background)."""
        self.turns.install()
        self.sync()
        self.jobs.call("recover", self.index.recover, on_done=self._on_recover_done,
                       on_error=lambda exc: log.warning("document recovery failed: %s", exc))

    def _on_recover_done(self, removed: int) -> None:
        if removed:
            log.info("removed %d half-added or unused documents", removed)

    # ---- adding files ---------------------------------------------------------

    def attach_files(self, paths: Sequence[str]) -> None:
        """Add files and folders to the open chat (a new chat is created if none is open)."""
        given = [str(p) for p in paths if str(p)]
        if not given or self._closed:
            return
        created = self.win.conversation_id is None
        conv = self.win.ensure_conversation()
        if created:
            self.win.sidebar.refresh()
            self.win.sidebar.select(conv, emit=False)
        self.sync()
        self.jobs.ingest(given, conv, lambda ev: self._on_ingest_event(conv, ev))

    # ---- ingestion events (GUI thread) ------------------------------------

    def _on_ingest_event(self, conv: int, ev: Any) -> None:
        if self._closed:
            return
        if isinstance(ev, BatchQueued):
            for task in ev.tasks:
                self.tasks[task.id] = task
                if task.conversation_id == self._shown:
                    self.bar.add_row(task.id, task.name)
            for folder in ev.empty_folders:
                self._add_notice(conv, f"The folder {Path(folder).name} holds no files Hearth can read "
                                       f"({SUPPORTED_SUMMARY}).")
            if ev.skipped:
                self._status(f"Skipped {ev.skipped} file{'s' if ev.skipped != 1 else ''} in the folder that "
                             "Hearth cannot read (or hidden files).")
            return
        if isinstance(ev, TaskEvent):
            self._on_task_event(ev.task, ev.event)

    def _on_task_event(self, task: IngestTask, ev: IngestProgress) -> None:
        if task.id not in self.tasks:
            return
        if isinstance(ev, IngestDone):
            self._drop_task(task)
            if task.conversation_id == self._shown:
                self.refresh_attachments()
            if ev.note:
                self._status(ev.note)
        elif isinstance(ev, IngestFailed):
            if isinstance(ev.error, PasswordRequired):
                self._ask_password(task, ev.error)
                return
            self._drop_task(task)
            self._add_notice(task.conversation_id, ev.message)
        elif isinstance(ev, IngestCancelled):
            self._drop_task(task)
            self._status(f"Adding {task.name} was cancelled; nothing of it was kept.")
        else:
            task.fraction = ev.fraction
            task.phase = phase_text(ev) or task.phase
            row = self.bar.rows.get(task.id)
            if row is not None:
                row.set_progress(task.fraction, task.phase)
            self.ingest_progress.emit(task)
            return
        self.ingest_finished.emit(task, ev)

    def _drop_task(self, task: IngestTask) -> None:
        self.tasks.pop(task.id, None)
        self.bar.remove_row(task.id)

    def cancel_task(self, task_id: int) -> None:
        task = self.tasks.get(task_id)
        if task is None:
            return
        if self.passwords.withdraw(task_id):
            self._drop_task(task)
            self._status(f"Adding {task.name} was cancelled.")
            self.ingest_finished.emit(task, IngestCancelled(task.path, task.name))
            return
        task.cancel.set()
        row = self.bar.rows.get(task_id)
        if row is not None:
            row.set_progress(task.fraction, "Cancelling…")
            row.cancel_button.setEnabled(False)

    # ---- passwords -------------------------------------------------------------

    def _ask_password(self, task: IngestTask, why: PasswordRequired) -> None:
        task.phase = "Needs a password"
        row = self.bar.rows.get(task.id)
        if row is not None:
            row.set_progress(task.fraction, task.phase)
        self.passwords.ask(task, why)

    def _on_password_given(self, task: IngestTask, password: str) -> None:
        if self._closed or task.id not in self.tasks:
            return
        task.password = password
        task.phase = "Opening…"
        row = self.bar.rows.get(task.id)
        if row is not None:
            row.set_progress(task.fraction, task.phase)
        self.jobs.retry(task, lambda ev: self._on_ingest_event(task.conversation_id, ev))

    def _on_password_refused(self, task: IngestTask) -> None:
        if task.id not in self.tasks:
            return
        self._drop_task(task)
        self._add_notice(task.conversation_id, f"{task.name} was not added: it is protected by a password and "
                                               "none was entered. Add it again to enter its password.")
        self.ingest_finished.emit(task, IngestCancelled(task.path, task.name))

    # ---- notices ---------------------------------------------------------------

    def _add_notice(self, conv: int, message: str) -> None:
        nid = self._next_notice
        self._next_notice += 1
        self.notices[nid] = (conv, message)
        if conv == self._shown:
            self.bar.add_notice(nid, message)

    def dismiss_notice(self, notice_id: int) -> None:
        self.notices.pop(notice_id, None)
        self.bar.remove_notice(notice_id)

    def _status(self, text: str) -> None:
        self.win.statusBar().showMessage(text, NOTICE_MS)

    # ---- the conversation's attachments ----------------------------------------

    def sync(self) -> None:
        """Show the open conversation's attachments, files being added and problems."""
        conv = self.win.conversation_id
        if self._synced and conv == self._shown:
            return
        self._synced = True
        self._shown = conv
        self.bar.clear_rows()
        for task in self.tasks.values():
            if task.conversation_id == conv:
                self.bar.add_row(task.id, task.name).set_progress(task.fraction, task.phase)
        for nid, (c, message) in self.notices.items():
            if c == conv:
                self.bar.add_notice(nid, message)
        self.refresh_attachments()

    def refresh_attachments(self) -> None:
        conv = self._shown
        # One indexed query on a read connection (WAL: never held up by ingestion's writes).
        atts = self.index.attachments(conv) if conv is not None else []
        hidden = frozenset(d for c, d in self._removing if c == conv)
        self.bar.set_attachments(atts, hidden)
        self.attachments_changed.emit(conv)

    def remove_attachment(self, document_id: int) -> None:
        conv = self._shown
        if conv is None:
            return
        chip = self.bar.chips.get(document_id)
        name = chip.attachment.name if chip is not None else "The document"
        key = (conv, document_id)
        self._removing.add(key)
        self.refresh_attachments()

        def done(_result: Any) -> None:
            self._removing.discard(key)
            self._status(f"Removed {name} from this chat.")
            if conv == self._shown:
                self.refresh_attachments()

        def failed(exc: BaseException) -> None:
            self._removing.discard(key)
            if conv == self._shown:
                self.refresh_attachments()
            self.win.show_error(f"{name} could not be removed from this chat ({exc}). Try again.")

        # Deleting a big document's passages takes a while: never on the GUI thread.
        self.jobs.call("remove", lambda: self.index.remove_attachment(conv, document_id), done, failed)

    # ---- citations ----------------------------------------------------------------

    def open_citation(self, citation: dict[str, Any]) -> None:
        """Show the cited page with the passage highlighted (loaded off the GUI thread)."""
        if self.preview is None:
            self.preview = CitationPreview(self.win)
        self.preview.show_loading(citation)
        token = object()
        self._preview_token = token
        doc_id = citation.get("document_id")
        page = citation.get("page")

        def load() -> str:
            return self.index.page_text(int(doc_id), page) if doc_id is not None else ""

        def shown(text: str) -> None:
            if self._preview_token is token and self.preview is not None:
                self.preview.show_citation(citation, text)

        def failed(exc: BaseException) -> None:
            if self._preview_token is token and self.preview is not None:
                self.preview.show_passage_only(str(citation.get("text") or ""),
                                               f"The page could not be loaded ({exc}); this is the passage as cited.")

        self.jobs.call("preview", load, shown, failed)

    # ---- window events -------------------------------------------------------------

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.win:
            self._on_window_event(ev)
            return False  # the window still handles every event itself
        if obj is self._composer_viewport:
            return self._on_composer_drag(ev)
        return False

    def _on_window_event(self, ev: QEvent) -> None:
        t = ev.type()
        if t == QEvent.Type.DragEnter and isinstance(ev, QDropEvent):
            self._show_overlay(ev.mimeData())
        elif t in (QEvent.Type.DragLeave, QEvent.Type.Drop):
            self.overlay.hide()
        elif t == QEvent.Type.Close:
            # Before MainWindow.closeEvent, whose caller closes the database next.
            self.shutdown()

    def _on_composer_drag(self, ev: QEvent) -> bool:
        """Files dropped on the message box are attached too: the text box would otherwise
        take the text/plain that file managers add and paste the files' paths."""
        t = ev.type()
        if t in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and isinstance(ev, QDropEvent):
            if not _local_files(ev.mimeData()):
                return False
            ev.acceptProposedAction()
            if t == QEvent.Type.DragEnter:
                self._show_overlay(ev.mimeData())
            return True
        if t == QEvent.Type.Drop and isinstance(ev, QDropEvent) and _local_files(ev.mimeData()):
            self.overlay.hide()
            self.win.dropEvent(ev)  # the window's own handling: models open, documents attach
            return True
        if t == QEvent.Type.DragLeave:
            self.overlay.hide()
        return False

    def _show_overlay(self, mime: QMimeData) -> None:
        files = _local_files(mime)
        if files and not self._closed:
            models = all(f.lower().endswith(".gguf") for f in files)
            self.overlay.show_over(DROP_MODEL_TEXT if models else DROP_TEXT)

    def shutdown(self) -> None:
        """Cancel every ingestion and wait for the document threads (at close or quit)."""
        if self._closed:
            return
        self._closed = True
        self.overlay.hide()
        self.passwords.close()
        self.chooser.close()
        if self.preview is not None:
            self.preview.close()
        self.jobs.shutdown()
        if self.embedder is not None:
            self.embedder.close()


def _local_files(mime: QMimeData) -> list[str]:
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
