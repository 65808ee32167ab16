"""The first-run welcome: what Hearth is, this computer, the recommended model with its fit, and a way in.

Shown as a page of the main window (never a modal dialog, so start-up and
tests are not blocked) while ``settings.first_run_done`` is False. Skip,
Download, opening a GGUF file or loading any model marks it done for good.
Downloading and importing go through the Models page, so nothing here touches
the network or the disk on the GUI thread; offline it still works.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget,
)

from app.errors import HearthError
from app.models import CatalogEntry
from app.models.units import format_bytes
from app.planner import DOES_NOT_FIT, FITS
from ui.pages.hardware import hardware_rows
from ui.models.page import ModelsPage
from ui.models.widgets import FitBadge, muted_label, set_error_style
from ui.widgets.forms import add_form_row, aligned_form
from ui.widgets.inputs import guard_wheel
from ui.widgets.page_layout import scrolled_page

if TYPE_CHECKING:
    from app.context import AppContext
    from app.settings import Settings
    from ui.chat.controller import ChatController

log = logging.getLogger(__name__)

NO_FIRST_RUN_ENV = "HEARTH_NO_FIRST_RUN"
WHAT_HEARTH_IS = (
    "Hearth runs AI language models, such as OpenAI's gpt-oss-20b, right here on this computer. "
    "What you type and the documents you add never leave it, and once a model is downloaded "
    "Hearth works without the internet."
)
OFFLINE_NOTE = ("Offline mode is on, so Hearth will not download anything. Turn it off in Settings to "
                "download, or use a GGUF file you already have.")
_HW_ROWS = ("CPU", "Cores", "Memory (RAM)", "GPU")


class WelcomePage(QWidget):
    """The welcome flow, as a page of the main window."""

    def __init__(self, ctx: AppContext, controller: ChatController, models: ModelsPage, *,
                 show_page: Callable[[QWidget], None], chat_page: QWidget) -> None:
        super().__init__()
        self.ctx = ctx
        self.models = models
        self.show_page = show_page
        self.chat_page = chat_page
        self.setObjectName("welcomePage")
        self.recommended: CatalogEntry | None = None
        self.alternative: CatalogEntry | None = None  # a smaller chat model, when the recommended one is too large
        self._pending_import: Path | None = None
        self._finished = False
        self._build()
        guard_wheel(self)
        models.fits_updated.connect(self._render)
        models.import_finished.connect(self._on_models_import_finished)
        controller.model_loading.connect(self._on_controller_model_loading)
        controller.model_loaded.connect(self._on_controller_model_loaded)
        self._render()

    # ---- layout ----------------------------------------------------------

    def _build(self) -> None:
        _, _, col = scrolled_page(self, margins=(48, 32, 48, 32), spacing=16)
        col.addWidget(QLabel("<h1>Welcome to Hearth</h1>"))
        what = QLabel(WHAT_HEARTH_IS)
        what.setWordWrap(True)
        what.setAccessibleName("What Hearth is")
        col.addWidget(what)

        self.hw_box = QGroupBox("This computer")
        self.hw_box.setAccessibleName("This computer")
        self.hw_form = aligned_form(self.hw_box)
        col.addWidget(self.hw_box)

        self.model_box = QGroupBox("Recommended model")
        self.model_box.setAccessibleName("Recommended model")
        ml = QVBoxLayout(self.model_box)
        head = QHBoxLayout()
        self.model_title = QLabel("")
        self.model_title.setAccessibleName("Recommended model name")
        head.addWidget(self.model_title, 1)
        self.badge = FitBadge()
        head.addWidget(self.badge)
        ml.addLayout(head)
        self.model_size = QLabel("")
        self.model_size.setAccessibleName("Download size")
        ml.addWidget(self.model_size)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.verdict.setAccessibleName("Fit verdict")
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        ml.addWidget(self.verdict)
        self.alternative_label = QLabel("")
        self.alternative_label.setWordWrap(True)
        self.alternative_label.setVisible(False)
        ml.addWidget(self.alternative_label)
        alt_row = QHBoxLayout()
        self.alternative_button = QPushButton("")
        self.alternative_button.setVisible(False)
        self.alternative_button.clicked.connect(lambda: self.download(self.alternative))
        alt_row.addWidget(self.alternative_button)
        alt_row.addStretch(1)
        ml.addLayout(alt_row)
        col.addWidget(self.model_box)

        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.setAccessibleName("Download the recommended model")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(lambda: self.download(self.recommended))
        buttons.addWidget(self.download_button)
        self.have_file_button = QPushButton("I already have a GGUF file")
        self.have_file_button.setAccessibleName("I already have a GGUF file")
        self.have_file_button.clicked.connect(self.choose_file)
        buttons.addWidget(self.have_file_button)
        buttons.addStretch(1)
        self.skip_button = QPushButton("Skip")
        self.skip_button.setAccessibleName("Skip the welcome")
        self.skip_button.setToolTip("Go to the chat; models can be added any time from View › Models")
        self.skip_button.clicked.connect(self.skip)
        buttons.addWidget(self.skip_button)
        col.addLayout(buttons)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Welcome status")
        col.addWidget(self.status)
        col.addStretch(1)

    # ---- content -----------------------------------------------------------

    def _render(self) -> None:
        models = self.models
        while self.hw_form.rowCount():
            self.hw_form.removeRow(0)
        hw = models.hardware
        if hw is None:
            self.hw_form.addRow(muted_label("Detecting this computer's processor, memory and graphics…"))
        else:
            for title, text in hardware_rows(hw):
                if title.startswith(_HW_ROWS):
                    lab = QLabel(text)
                    lab.setWordWrap(True)
                    lab.setAccessibleName(title)
                    add_form_row(self.hw_form, title, lab)
        chat = [e for e in models.catalog if e.role == "chat"]
        self.recommended = next((e for e in chat if e.recommended), chat[0] if chat else None)
        rec = self.recommended
        if rec is None:
            self.model_title.setText(models.catalog_error or "Reading the model catalog…")
            self.download_button.setEnabled(False)
            return
        fit = models.fit_for(f"catalog:{rec.id}")
        self.model_title.setText(f"<b>{_html(rec.name)}</b> · {_html(rec.publisher)}")
        self.badge.set_fit(fit)
        self.model_size.setText(f"Download size: {format_bytes(rec.size_bytes)}")
        self.verdict.setText(fit.summary)
        self.download_button.setText(f"Download {rec.name} ({format_bytes(rec.size_bytes)})")
        installed = models.installed_for(rec) is not None
        self.download_button.setEnabled(not models.offline and not installed)
        self.alternative = None
        if fit.verdict == DOES_NOT_FIT:
            self.alternative = next((e for e in chat if e is not rec
                                     and models.fit_for(f"catalog:{e.id}").verdict == FITS), None)
        alt = self.alternative
        self.alternative_label.setVisible(alt is not None)
        self.alternative_button.setVisible(alt is not None)
        if alt is not None:
            self.alternative_label.setText(f"A smaller model that fits this computer: <b>{_html(alt.name)}</b> "
                                           f"({format_bytes(alt.size_bytes)}). "
                                           f"{_html(models.fit_for(f'catalog:{alt.id}').summary)}")
            self.alternative_button.setText(f"Download {alt.name} ({format_bytes(alt.size_bytes)})")
            self.alternative_button.setAccessibleName(f"Download {alt.name} instead")
            self.alternative_button.setEnabled(not models.offline)
        # Enter picks the download that suits this computer.
        self.alternative_button.setDefault(alt is not None)
        self.download_button.setDefault(alt is None)
        if models.offline:
            self._set_status(OFFLINE_NOTE)
        elif installed:
            self._set_status(f"{rec.name} is already installed: load it from the Models page.")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        set_error_style(self.status, error)

    # ---- actions -----------------------------------------------------------

    def download(self, entry: CatalogEntry | None) -> None:
        """Start the download on the Models page, where its progress shows, and finish the welcome."""
        if entry is None:
            return
        if self.models.downloads.download(entry.download_request(), entry.name) is None:
            self._set_status(self.models.notice.text() or f"{entry.name} could not be queued.", error=True)
            return
        self.finish(self.models)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", str(Path.home()),
                                              "GGUF models (*.gguf);;All files (*)")
        if not path:
            return
        self._pending_import = Path(path)
        self._set_status(f"Checking {Path(path).name}…")
        self.have_file_button.setEnabled(False)
        # Used where it is (nothing copied); the Models page loads it once it is validated and listed.
        self.models.import_files([Path(path)], copy=False, load=True)

    def _on_models_import_finished(self, path: Any, model: Any, message: str) -> None:
        if self._pending_import is None or Path(path) != self._pending_import:
            return
        self._pending_import = None
        self.have_file_button.setEnabled(True)
        if model is None:
            self._set_status(message, error=True)
            return
        self.finish(None)  # the Models page has sent it to the chat to load

    def skip(self) -> None:
        self.finish(self.chat_page)

    def finish(self, show: QWidget | None) -> None:
        """Never show the welcome again; go to ``show`` (None: leave the current page as it is)."""
        if self._finished:
            return
        self._finished = True
        self.ctx.settings.first_run_done = True
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            log.warning("could not save that the welcome was done: %s", exc)
        if show is not None:
            self.show_page(show)
        elif self._is_current():
            self.show_page(self.chat_page)
        stack = self._stack()
        if stack is not None:
            stack.removeWidget(self)
        self.hide()
        self.deleteLater()

    def _stack(self) -> QStackedWidget | None:
        """The window's page stack this page was added to."""
        parent = self.parentWidget()
        return parent if isinstance(parent, QStackedWidget) else None

    def _is_current(self) -> bool:
        stack = self._stack()
        return stack is not None and stack.currentWidget() is self

    # ---- a model opened some other way -------------------------------------

    def _on_controller_model_loading(self, _path: str, _frac: float) -> None:
        if not self._finished and self._is_current():
            self.show_page(self.chat_page)  # e.g. a .gguf dropped on the window

    def _on_controller_model_loaded(self, _info: dict) -> None:
        self.finish(None)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def wants_first_run(settings: Settings) -> bool:
    """Whether to show the welcome: not done before and ``HEARTH_NO_FIRST_RUN`` not set (benchmarks)."""
    return os.environ.get(NO_FIRST_RUN_ENV, "") in ("", "0") and not settings.first_run_done
