"""Asking for the passwords of encrypted PDFs, one file at a time, without a nested event loop."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from app.documents.errors import PasswordRequired
from ui.documents.jobs import IngestTask


class PasswordPrompts(QObject):
    """A queue of password questions; one window-modal dialog is open at a time."""

    asked = Signal(object)  # IngestTask whose dialog (``dialog``) just opened
    given = Signal(object, str)  # IngestTask, password
    refused = Signal(object)  # IngestTask

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self._waiting: dict[int, tuple[IngestTask, PasswordRequired]] = {}  # by task id, in order
        self.dialog: QInputDialog | None = None
        self._dialog_task: int | None = None

    def waiting(self, task_id: int) -> bool:
        return task_id in self._waiting

    def ask(self, task: IngestTask, why: PasswordRequired) -> None:
        self._waiting[task.id] = (task, why)
        if self.dialog is None:
            self._next()

    def withdraw(self, task_id: int) -> bool:
        """Stop waiting for this file's password (its ingestion was cancelled); no signal."""
        if self._waiting.pop(task_id, None) is None:
            return False
        if self.dialog is not None and self._dialog_task == task_id:
            self.dialog.reject()
        return True

    def close(self) -> None:
        self._waiting.clear()
        if self.dialog is not None:
            self.dialog.reject()

    def _next(self) -> None:
        self.dialog = None
        self._dialog_task = None
        if not self._waiting:
            return
        task, why = next(iter(self._waiting.values()))
        dlg = QInputDialog(self._parent)
        dlg.setWindowTitle(f"Password for {task.name}")
        dlg.setInputMode(QInputDialog.InputMode.TextInput)
        dlg.setTextEchoMode(QLineEdit.EchoMode.Password)
        dlg.setLabelText(str(why))
        dlg.setOkButtonText("Add")
        dlg.setAccessibleName(f"Password for {task.name}")
        # accepted/rejected come before finished (textValueSelected would come after it).
        dlg.accepted.connect(lambda t=task, d=dlg: self._on_dialog_accepted(t, d.textValue()))
        dlg.rejected.connect(lambda t=task: self._on_dialog_rejected(t))
        dlg.finished.connect(lambda _r, d=dlg: self._on_dialog_finished(d))
        self.dialog = dlg
        self._dialog_task = task.id
        self.asked.emit(task)
        dlg.open()  # window-modal, but not exec(): the event loop and the other files go on

    def _on_dialog_accepted(self, task: IngestTask, password: str) -> None:
        if self._waiting.pop(task.id, None) is not None:
            self.given.emit(task, password)

    def _on_dialog_rejected(self, task: IngestTask) -> None:
        if self._waiting.pop(task.id, None) is not None:
            self.refused.emit(task)

    def _on_dialog_finished(self, dlg: QInputDialog) -> None:
        dlg.deleteLater()
        if self.dialog is dlg:
            self._next()
