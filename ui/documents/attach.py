"""Choosing documents to attach: the "+" button's menu, its shortcuts and the file dialogs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QPoint, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from app.documents.extract import CODE_NAMES, SUPPORTED_EXTS

LAST_DIR_KEY = "last_attach_dir"  # in Settings.extra


def file_dialog_filter() -> str:
    patterns = " ".join(sorted(f"*{e}" for e in SUPPORTED_EXTS)) + " " + " ".join(sorted(CODE_NAMES))
    return f"Documents ({patterns});;All files (*)"


class AttachChooser(QObject):
    """Files (multi-select) or a folder, chosen in a non-blocking dialog."""

    chosen = Signal(list)  # paths

    def __init__(self, window: QWidget, settings_extra: dict[str, Any]) -> None:
        super().__init__(window)
        self._window = window
        self._extra = settings_extra
        self.dialog: QFileDialog | None = None
        self.menu = QMenu(window)
        self.menu.setAccessibleName("Attach")
        self.action_files = self._action("Attach &files…", self.choose_files, QKeySequence("Ctrl+Shift+A"))
        self.action_folder = self._action("Attach a f&older…", self.choose_folder)

    def _action(self, text: str, slot: Any, shortcut: QKeySequence | None = None) -> QAction:
        a = QAction(text, self._window)
        if shortcut is not None:
            a.setShortcut(shortcut)
        a.triggered.connect(slot)
        self.menu.addAction(a)
        self._window.addAction(a)  # the shortcut works anywhere in the window
        return a

    def popup_above(self, button: QWidget) -> None:
        """The menu opens above the button, as the composer sits at the bottom of the window."""
        top_left = button.mapToGlobal(QPoint(0, 0))
        self.menu.popup(top_left - QPoint(0, self.menu.sizeHint().height()))

    def _start_dir(self) -> str:
        last = self._extra.get(LAST_DIR_KEY)
        return str(last) if isinstance(last, str) and Path(last).is_dir() else str(Path.home())

    def choose_files(self) -> None:
        dlg = QFileDialog(self._window, "Attach documents", self._start_dir(), file_dialog_filter())
        dlg.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dlg.filesSelected.connect(self._on_dialog_chosen)
        self._open(dlg)

    def choose_folder(self) -> None:
        dlg = QFileDialog(self._window, "Attach a folder", self._start_dir())
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.fileSelected.connect(lambda path: self._on_dialog_chosen([path]))
        self._open(dlg)

    def _open(self, dlg: QFileDialog) -> None:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = dlg
        dlg.finished.connect(lambda _r, d=dlg: self._on_dialog_finished(d))
        dlg.open()  # not exec(): no nested event loop

    def _on_dialog_finished(self, dlg: QFileDialog) -> None:
        dlg.deleteLater()
        if self.dialog is dlg:
            self.dialog = None

    def _on_dialog_chosen(self, paths: list[str]) -> None:
        if not paths:
            return
        first = Path(paths[0])
        self._extra[LAST_DIR_KEY] = str(first if first.is_dir() else first.parent)
        self.chosen.emit(list(paths))

    def close(self) -> None:
        self.menu.hide()
        if self.dialog is not None:
            self.dialog.close()
