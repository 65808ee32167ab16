"""The Models page: installed models, the curated catalog and Hugging Face search; downloads and import.

All disk and network work (scans, fit estimates, downloads, imports, deletes,
searches) runs through ModelsWorker off the GUI thread. The page keeps plain
lists from app.models and rebuilds its cards from them when they change;
download rows persist and are updated in place ~10 times a second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget,
)

from app.errors import HearthError
from app.gguf_info import read_gguf_info
from app.hardware import HardwareInfo
from app.models import (
    CancelToken, CatalogEntry, FitVerdict, InstalledModel, ModelLibrary, NetworkConfig, RetryPolicy, TokenStore,
    hub, load_catalog,
)
from app.models.hfcache import CachedModel, find_cached_models
from app.models.library import LibraryProblem, PartialDownload
from app.planner import ModelSpec
from ui.models.browse import CatalogTab, SearchTab
from ui.models.downloads import DownloadsPanel
from ui.models.imports import ImportsPanel
from ui.models.installed import InstalledTab
from ui.models.worker import ModelsWorker
from ui.widgets.inputs import guard_wheel
from ui.models.widgets import FIT_PENDING, UNKNOWN, Fit, plan_fit, set_error_style

if TYPE_CHECKING:
    from app.context import AppContext

log = logging.getLogger(__name__)

RESCAN_ON_SHOW_S = 2.0  # showing the page looks again for files added behind Hearth's back


@dataclass(frozen=True)
class ScanResult:
    models: list[InstalledModel]
    problems: list[LibraryProblem]
    partial: list[PartialDownload]
    cached: list[CachedModel]  # GGUF models in the Hugging Face cache not in the library yet
    specs: dict[str, ModelSpec]  # installed model name -> its shape (for the fit badge)


class ModelsPage(QWidget):
    """Tabs Installed / Catalog / Search, the download list, import by dialog or drag-and-drop."""

    scanned = Signal()  # the installed / partial / cache lists were refreshed
    fits_updated = Signal()  # the catalog and the fit badges were refreshed
    import_finished = Signal(object, object, str)  # the file, InstalledModel or None, what happened
    status_message = Signal(str)  # a notice for the window's status bar
    load_requested = Signal(str)  # a model's path: load it in the chat and go there

    def __init__(self, ctx: AppContext, tokens: TokenStore | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.tokens = tokens
        self.setObjectName("modelsPage")
        self.setAcceptDrops(True)
        self.retry_policy: RetryPolicy | None = None  # None: the downloader's default (tests make it fast)
        self.hf_cache_dir: Path | None = None  # None: where huggingface_hub keeps it
        self.worker = ModelsWorker(self)
        self.library = ModelLibrary(self.ctx.models_dir, self.ctx.paths)
        self.hardware: HardwareInfo | None = None
        self.catalog: list[CatalogEntry] = []
        self.catalog_error = ""
        self.fits: dict[str, Fit] = {}  # "catalog:<id>" / "installed:<name>" -> Fit
        self.scan_result: ScanResult | None = None
        self._specs: dict[tuple[str, int, int], ModelSpec] = {}
        self.closing = False
        self._scan_again = False
        self._fit_gen = 0
        self._last_scan = 0.0
        self._build()
        guard_wheel(self)  # no field changes on a wheel it did not ask for
        self.refresh()
        self.refresh_fits()

    # ---- layout ----------------------------------------------------------

    def _build(self) -> None:
        col = QVBoxLayout(self)
        col.setContentsMargins(24, 16, 24, 16)
        col.setSpacing(10)
        top = QHBoxLayout()
        top.addWidget(QLabel("<h2>Models</h2>"))
        top.addStretch(1)
        self.import_button = QPushButton("Import…")
        self.import_button.setAccessibleName("Import a GGUF model file")
        self.import_button.setToolTip("Add a .gguf file you already have")
        self.import_button.clicked.connect(self.choose_import)
        top.addWidget(self.import_button)
        self.copy_check = QCheckBox("Copy into the models folder")
        self.copy_check.setAccessibleName("Copy imported files into the models folder")
        self.copy_check.setToolTip("Off: an imported file is used where it is, nothing is copied. "
                                   "On: it is copied into the models folder and checksummed on the way.")
        self.copy_check.setChecked(bool(self.ctx.settings.extra.get("import_copy", False)))
        self.copy_check.toggled.connect(self._on_copy_check_toggled)
        top.addWidget(self.copy_check)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Look for models again")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        col.addLayout(top)

        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Models notice")
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice.setVisible(False)
        col.addWidget(self.notice)

        self.downloads = DownloadsPanel(self)
        self.downloads.changed.connect(self._on_downloads_changed)
        col.addWidget(self.downloads)
        self.imports = ImportsPanel(self)
        self.imports.finished.connect(self.import_finished)
        col.addWidget(self.imports)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Model lists")
        self.installed_tab = InstalledTab(self)
        self.tabs.addTab(self.installed_tab, "Installed")
        self.catalog_tab = CatalogTab(self)
        self.tabs.addTab(self.catalog_tab, "Catalog")
        self.search_tab = SearchTab(self)
        self.tabs.addTab(self.search_tab, "Search")
        col.addWidget(self.tabs, 1)

    def show_notice(self, text: str, *, error: bool = False) -> None:
        """A line at the top of the page (and in the status bar): what just happened, or what went wrong."""
        self.notice.setText(text)
        set_error_style(self.notice, error)
        self.notice.setVisible(bool(text))
        if text:
            if error:
                log.warning("models page: %s", text)
            self.status_message.emit(text)

    @staticmethod
    def message(error: BaseException) -> str:
        """What to tell the user about a failed job."""
        if isinstance(error, HearthError):
            return str(error)
        if isinstance(error, OSError):
            return f"{error.filename or 'A file'} could not be read or written: {error.strerror or error}."
        return f"Unexpected error: {error}"

    # ---- network ---------------------------------------------------------

    @property
    def offline(self) -> bool:
        return bool(self.ctx.settings.offline)

    def net(self) -> NetworkConfig:
        """The network settings as they are now (a changed setting applies to the next call)."""
        s = self.ctx.settings
        token = self.tokens.get() if self.tokens is not None and not s.offline else None
        return NetworkConfig(offline=s.offline, endpoint=s.hf_endpoint or None, proxy=s.proxy or None, token=token)

    # ---- hardware and fit ------------------------------------------------

    def set_hardware(self, hw: HardwareInfo | None) -> None:
        """Judge fit on this machine (the Hardware page's detection, or a built-in profile)."""
        self.hardware = hw
        self.refresh_fits()

    def fit_for(self, key: str) -> Fit:
        if self.hardware is None:
            return FIT_PENDING
        return self.fits.get(key, FIT_PENDING)

    def refresh_fits(self) -> None:
        """Read the catalog and plan every model on this machine, in the background."""
        if self.closing:
            return
        self._fit_gen += 1
        gen = self._fit_gen
        hw = self.hardware
        n_ctx = self.ctx.settings.context_size
        specs = dict(self.scan_result.specs) if self.scan_result else {}

        def work(_cancel: CancelToken) -> tuple[list[CatalogEntry], dict[str, Fit]]:
            fits: dict[str, Fit] = {}

            def catalog_fit(entry: CatalogEntry) -> FitVerdict | None:
                if hw is None:
                    return None
                fit = plan_fit(ModelSpec.from_catalog(entry.to_dict()), hw, n_ctx)
                fits[f"catalog:{entry.id}"] = fit
                return FitVerdict(fit.verdict, fit.summary)

            entries = load_catalog(fit=catalog_fit)
            for e in entries:  # a plan that failed came back as an "unknown" verdict with the reason
                if hw is not None and f"catalog:{e.id}" not in fits and e.fit is not None:
                    fits[f"catalog:{e.id}"] = Fit(e.fit.verdict, e.fit.summary)
            for name, spec in specs.items():
                if hw is None:
                    break
                try:
                    fits[f"installed:{name}"] = plan_fit(spec, hw, n_ctx)
                except (HearthError, ValueError, ArithmeticError, KeyError, TypeError) as exc:
                    fits[f"installed:{name}"] = Fit(UNKNOWN, f"Hearth could not estimate whether {name} fits: {exc}")
            return entries, fits

        def done(result: Any, error: Exception | None) -> None:
            if gen != self._fit_gen:
                return  # a newer estimate is on its way
            if error is not None:
                self.catalog_error = self.message(error)
            else:
                self.catalog, self.fits = result
                self.catalog_error = ""
                self.library.catalog = list(self.catalog)  # matches downloads to catalog entries
            self.installed_tab.rebuild()
            self.catalog_tab.rebuild()
            self.search_tab.refresh_badges()
            self.fits_updated.emit()

        self.worker.call("fit", work, done)

    # ---- library ---------------------------------------------------------

    def refresh(self) -> None:
        """Look at the models folder, the part files and the Hugging Face cache again (in the background)."""
        if self.closing:
            return
        if self.worker.busy("scan"):
            self._scan_again = True
            return
        library = self.current_library()
        cache_dir = self.hf_cache_dir
        self._last_scan = time.monotonic()

        def work(_cancel: CancelToken) -> ScanResult:
            scan = library.scan()
            known = {str(Path(m.path).resolve()) for m in scan.models}
            cached = [c for c in find_cached_models(cache_dir) if str(Path(c.path).resolve()) not in known]
            specs: dict[str, ModelSpec] = {}
            for m in scan.models:
                try:
                    specs[m.name] = self._spec(m.path)
                except (HearthError, OSError, ValueError) as exc:
                    log.info("no fit estimate for %s: %s", m.name, exc)
            return ScanResult(scan.models, scan.problems, scan.partial, cached, specs)

        self.worker.call("scan", work, self._on_scan_done)

    def _spec(self, path: Path) -> ModelSpec:
        """A model's shape from its header, kept while the file is unchanged (a big vocabulary takes a
        moment to read). Called on the scan thread only; one scan runs at a time."""
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        spec = self._specs.get(key)
        if spec is None:
            spec = ModelSpec.from_gguf(read_gguf_info(path))
            self._specs[key] = spec
        return spec

    def current_library(self) -> ModelLibrary:
        """The library of the models folder as Settings has it now."""
        if Path(self.library.models_dir) != Path(self.ctx.models_dir).expanduser():
            self.library = ModelLibrary(self.ctx.models_dir, self.ctx.paths, catalog=list(self.catalog))
        return self.library

    def _on_scan_done(self, result: Any, error: Exception | None) -> None:
        if error is not None:
            self.show_notice(f"Could not look through the models folder {self.library.models_dir}: "
                             f"{self.message(error)}", error=True)
        else:
            self.scan_result = result
            self.installed_tab.rebuild()
            self.catalog_tab.rebuild()
            self.refresh_fits()
            self.scanned.emit()
        if self._scan_again:
            self._scan_again = False
            self.refresh()

    @property
    def installed(self) -> list[InstalledModel]:
        return list(self.scan_result.models) if self.scan_result else []

    def installed_for(self, entry: CatalogEntry) -> InstalledModel | None:
        """The installed copy of a catalog entry, if there is one."""
        return next((m for m in self.installed if m.catalog_id == entry.id or m.path.name == entry.filename), None)

    def load_path(self, path: str) -> None:
        """Load a model in the chat and go there (whoever built the page connects ``load_requested``)."""
        self.load_requested.emit(path)

    def _on_downloads_changed(self) -> None:
        # A finished download is a new model (or a part file gone): look again; the catalog's
        # buttons follow the download list.
        self.refresh()
        self.installed_tab.rebuild()
        self.catalog_tab.rebuild()
        self.search_tab.refresh_buttons()

    # ---- import ----------------------------------------------------------

    def _on_copy_check_toggled(self, on: bool) -> None:
        self.ctx.settings.extra["import_copy"] = on

    def choose_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import GGUF model", str(Path.home()),
                                                "GGUF models (*.gguf);;All files (*)")
        if paths:
            self.import_files([Path(p) for p in paths])

    def import_files(self, paths: list[Path], *, copy: bool | None = None, load: bool = False) -> None:
        """Validate each file in the background and add it, copied or used where it is (the Copy box
        decides when ``copy`` is None); ``load`` opens the model once it is added."""
        use_copy = self.copy_check.isChecked() if copy is None else copy
        for path in paths:
            self.imports.start(Path(path), copy=use_copy, load=load)


    # ---- drag and drop ---------------------------------------------------

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [Path(u.toLocalFile()) for u in e.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        e.acceptProposedAction()
        self.tabs.setCurrentWidget(self.installed_tab)
        self.import_files(paths)  # each file is validated; a non-GGUF one gets a message saying so

    # ---- life cycle ------------------------------------------------------

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.search_tab.update_offline()
        if time.monotonic() - self._last_scan > RESCAN_ON_SHOW_S:
            self.refresh()

    def on_settings_saved(self, changed: list[str]) -> None:
        """Follow the Settings page: offline mode, the models folder, the context size."""
        if "offline" in changed:
            hub.configure_environment(self.offline)  # huggingface_hub's own switch follows ours
            self.search_tab.update_offline()
            self.catalog_tab.rebuild()
        if "models_dir" in changed:
            self.refresh()
        if "context_size" in changed:
            self.refresh_fits()

    def shutdown(self) -> None:
        """Pause running downloads (their part files stay for next time) and join every thread."""
        if self.closing:
            return
        self.closing = True
        self.imports.cancel_all()
        self.worker.shutdown()
