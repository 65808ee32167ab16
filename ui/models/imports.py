"""Adding GGUF files the user already has: validated, then copied into the models folder or used in place.

Each file is checked and added on a background thread (ModelLibrary.iter_import);
a copy shows a row with its progress and Cancel, and a cancelled copy leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.models import CancelToken
from app.models.library import ImportProgress

if TYPE_CHECKING:
    from ui.models.page import ModelsPage


class ImportRow(QWidget):
    """A file being copied into the models folder, with Cancel."""

    def __init__(self, name: str, cancel: CancelToken) -> None:
        super().__init__()
        self.cancel_token = cancel
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(f"Copying {name} into the models folder…")
        row.addWidget(self.label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setFixedWidth(180)
        self.progress.setAccessibleName(f"Progress of copying {name}")
        row.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel copying {name}")
        self.cancel_button.clicked.connect(cancel.cancel)
        row.addWidget(self.cancel_button)

    def update_progress(self, ev: ImportProgress) -> None:
        if ev.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(ev.bytes_done * 1000 / ev.total))


class ImportsPanel(QWidget):
    """The imports under way (copies show a row); says on the page how each one went."""

    finished = Signal(object, object, str)  # the file, InstalledModel or None, what happened

    def __init__(self, page: ModelsPage) -> None:
        super().__init__()
        self.page = page
        self.rows: list[ImportRow] = []
        self._col = QVBoxLayout(self)
        self._col.setContentsMargins(0, 0, 0, 0)

    def start(self, path: Path, *, copy: bool, load: bool) -> None:
        page = self.page
        if page.closing:
            return
        library = page.current_library()
        row: ImportRow | None = None

        def gen(cancel: CancelToken) -> Iterator[ImportProgress]:
            return library.iter_import(path, copy=copy, cancel=cancel)

        def on_event(ev: ImportProgress) -> None:
            if row is not None:
                row.update_progress(ev)

        def done(last: Any, error: Exception | None) -> None:
            if row is not None:
                self.rows.remove(row)
                row.hide()
                row.deleteLater()
            model = last.model if isinstance(last, ImportProgress) else None
            if error is not None or model is None:
                msg = page.message(error) if error is not None else f"{path.name} could not be added."
                page.show_notice(msg, error=True)
                self.finished.emit(path, None, msg)
                return
            where = "copied into the models folder" if copy else "used where it is"
            msg = f"Added {model.name} ({model.architecture}, {model.quantization}), {where}."
            page.show_notice(msg)
            self.finished.emit(path, model, msg)
            page.refresh()
            if load:
                page.load_path(str(model.path))

        task = page.worker.stream("import", gen, on_event=on_event, on_done=done)
        if copy:
            row = ImportRow(path.name, task.cancel)
            self.rows.append(row)
            self._col.addWidget(row)

    def cancel_all(self) -> None:
        for row in self.rows:
            row.cancel_token.cancel()
