"""The Models page's Catalog and Search tabs: what can be downloaded, with its fit on this computer."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget,
)

from app.errors import HearthError
from app.models import CatalogEntry, DownloadRequest, DownloadState, hub
from app.models.hub import RemoteModelFile, RemoteRepo
from app.models.units import format_bytes
from ui.models.widgets import (
    UNKNOWN, Fit, ModelCard, clear_layout, context_text, guess_quantization, muted_label, set_error_style,
)

if TYPE_CHECKING:
    from ui.models.page import ModelsPage

SEARCH_OFFLINE = ("Searching Hugging Face needs the network, and Offline mode is on, so Hearth makes no "
                  "connection. Turn Offline mode off in Settings to search. Installed models keep working.")
SEARCH_TIMEOUT_S = 30.0  # a search that has not answered by then is given up, naming the server
SEARCH_CANCELLED = "Search cancelled."


def _scroll_body(owner: QWidget) -> QVBoxLayout:
    """``owner``'s top-level column."""
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 8, 0, 0)
    return outer


def _scrolled_column(outer: QVBoxLayout) -> QVBoxLayout:
    """A scroll area added to ``outer``; returns the column inside it that holds the cards."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    body = QWidget()
    scroll.setWidget(body)
    col = QVBoxLayout(body)
    col.setContentsMargins(0, 0, 0, 0)
    inner = QVBoxLayout()
    col.addLayout(inner)
    col.addStretch(1)
    outer.addWidget(scroll, 1)
    return inner


class CatalogTab(QWidget):
    """The curated models, gpt-oss-20b first, each with its fit badge and Download or Load."""

    def __init__(self, page: ModelsPage) -> None:
        super().__init__()
        self.page = page
        self.cards: dict[str, ModelCard] = {}  # catalog id -> card, in catalog order
        outer = _scroll_body(self)
        self.col = _scrolled_column(outer)
        self.rebuild()

    def rebuild(self) -> None:
        page = self.page
        clear_layout(self.col)
        self.cards = {}
        if page.catalog_error:
            lab = QLabel(page.catalog_error)
            lab.setWordWrap(True)
            set_error_style(lab, True)
            self.col.addWidget(lab)
            return
        if not page.catalog:
            self.col.addWidget(muted_label("Reading the catalog…"))
            return
        for entry in page.catalog:
            card = self._card(entry)
            self.col.addWidget(card)
            self.cards[entry.id] = card

    def _card(self, e: CatalogEntry) -> ModelCard:
        page = self.page
        facts = [e.publisher, format_bytes(e.size_bytes), e.quantization, context_text(e.n_ctx_train),
                 f"license {e.license}"]
        if e.role == "embedding":
            facts.append("embedding model (for searching documents)")
        card = ModelCard(e.name, facts, detail=e.description, fit=page.fit_for(f"catalog:{e.id}"),
                         tag="Recommended" if e.recommended else "")
        installed = page.installed_for(e)
        job = page.downloads.job_for(e.download_request())
        if installed is not None:
            path = str(installed.path)
            card.add_button("load", "Load", lambda: page.load_path(path), accessible=f"Load {e.name}")
        elif job is not None and job.state not in (DownloadState.CANCELLED, DownloadState.COMPLETED):
            b = card.add_button("download", "In Downloads", lambda: None, accessible=f"{e.name} is in Downloads")
            b.setEnabled(False)
        else:
            b = card.add_button("download", f"Download {format_bytes(e.size_bytes)}",
                                lambda: page.downloads.download(e.download_request(), e.name),
                                accessible=f"Download {e.name}")
            if page.offline:
                b.setEnabled(False)
                b.setToolTip("Offline mode is on: turn it off in Settings to download.")
        return card


class SearchTab(QWidget):
    """Search Hugging Face for GGUF repositories, list a repository's GGUF files, download one."""

    results_shown = Signal()  # a search answered (hits or an error)
    files_shown = Signal(str)  # repo id whose files are now listed (or failed to list)

    def __init__(self, page: ModelsPage) -> None:
        super().__init__()
        self.page = page
        self.repos: list[RemoteRepo] = []
        self.repo_cards: dict[str, ModelCard] = {}
        self.file_cards: dict[tuple[str, str], ModelCard] = {}
        self._files: dict[tuple[str, str], RemoteModelFile] = {}
        self._gen = 0
        self._search_task: Any = None  # the running search's Job
        self.timeout_s = SEARCH_TIMEOUT_S
        self._timeout = QTimer(self)
        self._timeout.setSingleShot(True)
        self._timeout.timeout.connect(self._on_search_timeout)
        self._endpoint = ""
        outer = _scroll_body(self)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search Hugging Face for GGUF models, e.g. gpt-oss")
        self.query.setAccessibleName("Search Hugging Face")
        self.query.returnPressed.connect(self.search)
        row.addWidget(self.query, 1)
        self.search_button = QPushButton("Search")
        self.search_button.setAccessibleName("Search Hugging Face")
        self.search_button.clicked.connect(self.search)
        row.addWidget(self.search_button)
        self.busy = QProgressBar()  # an indeterminate bar while a search is out
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedWidth(90)
        self.busy.setAccessibleName("Searching")
        self.busy.setVisible(False)
        row.addWidget(self.busy)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the search")
        self.cancel_button.clicked.connect(self.cancel_search)
        self.cancel_button.setVisible(False)
        row.addWidget(self.cancel_button)
        outer.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Search status")
        outer.addWidget(self.status)
        self.col = _scrolled_column(outer)
        self.update_offline()

    # ---- offline ---------------------------------------------------------

    def update_offline(self) -> None:
        offline = self.page.offline
        if offline and self.searching:
            self._stop_search()  # Offline mode was switched on mid-search: no more waiting on the network
        self.query.setEnabled(not offline)
        self.search_button.setEnabled(not offline)
        self.refresh_buttons()
        if offline:
            self._set_status(SEARCH_OFFLINE)
        elif self.status.text() == SEARCH_OFFLINE:
            self._set_status("")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        set_error_style(self.status, error)

    # ---- search ----------------------------------------------------------

    @property
    def searching(self) -> bool:
        return self._search_task is not None

    def _stop_search(self) -> None:
        """Forget the running search: its answer is ignored and its retries stop."""
        task, self._search_task = self._search_task, None
        self._gen += 1
        self._timeout.stop()
        if task is not None:
            task.cancel.cancel()
        self._show_busy(False)
        self.search_button.setEnabled(not self.page.offline)

    def _show_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def cancel_search(self) -> None:
        if not self.searching:
            return
        self._stop_search()
        self._set_status(SEARCH_CANCELLED)
        self.results_shown.emit()

    def _on_search_timeout(self) -> None:
        if not self.searching:
            return
        self._stop_search()
        self._set_status(f"{self._endpoint} did not answer within {self.timeout_s:g} seconds. Check your "
                         "internet connection and the proxy and mirror in Settings › Network, then search again.",
                         error=True)
        self.results_shown.emit()

    def search(self) -> None:
        if self.page.offline:  # no call at all, not even one that would be refused
            self.update_offline()
            self._set_status(SEARCH_OFFLINE)
            return
        if self.searching:
            self._stop_search()
        text = self.query.text().strip()
        if not text:
            self._set_status("Type part of a model's name, for example gpt-oss or qwen.")
            return
        self._gen += 1
        gen = self._gen
        net = self.page.net()
        policy = self.page.retry_policy
        self._endpoint = net.resolved_endpoint
        self._set_status(f"Searching {net.resolved_endpoint} for “{text}”…")
        self.search_button.setEnabled(False)
        self._show_busy(True)

        def done(result: Any, error: Exception | None) -> None:
            if gen != self._gen:
                return  # cancelled, timed out, or a newer search is out
            self._search_task = None
            self._timeout.stop()
            self._show_busy(False)
            self.search_button.setEnabled(not self.page.offline)
            if error is not None:
                self._set_status(_message(error), error=True)
            else:
                self.repos = list(result)
                self._set_status(f"{len(self.repos)} GGUF repositories found for “{text}”." if self.repos else
                                 f"No GGUF repositories match “{text}”.")
                self._render()
            self.results_shown.emit()

        self._search_task = self.page.worker.call(
            "search", lambda cancel: hub.search_models(text, net, policy=policy, cancel=cancel), done)
        self._timeout.start(int(self.timeout_s * 1000))

    def _render(self) -> None:
        clear_layout(self.col)
        self.repo_cards = {}
        self.file_cards = {}
        for r in self.repos:
            owner = r.repo_id.split("/", 1)[0]
            facts = [owner, f"{r.downloads:,} downloads" if r.downloads is not None else "",
                     f"{r.likes:,} likes" if r.likes is not None else "", _license(r.tags)]
            card = ModelCard(r.repo_id, facts, tag="needs a login" if r.gated else "")
            card.add_button("files", "Show files", partial(self.show_files, r),
                            accessible=f"Show the GGUF files of {r.repo_id}")
            self.col.addWidget(card)
            self.repo_cards[r.repo_id] = card

    def show_files(self, repo: RemoteRepo) -> None:
        card = self.repo_cards.get(repo.repo_id)
        if card is None or self.page.offline:
            self.update_offline()
            return
        card.buttons["files"].setEnabled(False)
        clear_layout(card.extra)
        card.extra.addWidget(muted_label("Listing files…"))
        net = self.page.net()
        policy = self.page.retry_policy
        gen = self._gen

        def done(result: Any, error: Exception | None) -> None:
            if gen != self._gen or self.repo_cards.get(repo.repo_id) is not card:
                return  # a newer search replaced the list
            card.buttons["files"].setEnabled(True)
            clear_layout(card.extra)
            if error is not None:
                lab = QLabel(_message(error))
                lab.setWordWrap(True)
                set_error_style(lab, True)
                card.extra.addWidget(lab)
            elif not result:
                card.extra.addWidget(muted_label("This repository has no .gguf files."))
            for m in result or []:
                fc = self._file_card(repo, m)
                card.extra.addWidget(fc)
                self.file_cards[(repo.repo_id, m.name)] = fc
                self._files[(repo.repo_id, m.name)] = m
            self.files_shown.emit(repo.repo_id)

        self.page.worker.call("files", lambda cancel: hub.list_gguf_files(repo.repo_id, net, policy=policy,
                                                                          cancel=cancel), done)

    def _file_card(self, repo: RemoteRepo, m: RemoteModelFile) -> ModelCard:
        owner = repo.repo_id.split("/", 1)[0]
        facts = [owner, format_bytes(m.size), guess_quantization(m.name) or "quantization unknown",
                 "context known once downloaded", _license(repo.tags)]
        if m.is_split:
            facts.append(f"{len(m.files)} files")
        card = ModelCard(m.name, facts, fit=self._size_fit(m))
        card.add_button("download", f"Download {format_bytes(m.size)}", lambda: self.download(repo, m),
                        accessible=f"Download {m.name}")
        self._update_button(card, repo.repo_id, m)
        return card

    def _update_button(self, card: ModelCard, repo_id: str, m: RemoteModelFile) -> None:
        b = card.buttons["download"]
        queued = False
        for f in m.files:
            job = self.page.downloads.job_for(DownloadRequest(repo_id, f.filename, revision=f.revision))
            queued = queued or (job is not None and job.state not in (DownloadState.CANCELLED,
                                                                      DownloadState.COMPLETED))
        b.setText("In Downloads" if queued else f"Download {format_bytes(m.size)}")
        b.setEnabled(not queued and not self.page.offline)

    def refresh_buttons(self) -> None:
        """Follow the download list (and offline mode) on the file cards shown."""
        for (repo_id, name), card in self.file_cards.items():
            m = self._files.get((repo_id, name))
            if m is not None:
                self._update_button(card, repo_id, m)

    def _size_fit(self, m: RemoteModelFile) -> Fit:
        hw = self.page.hardware
        have = "this computer's memory is still being detected"
        if hw is not None and hw.ram_total:
            have = f"this computer has {format_bytes(hw.ram_total)} of RAM"
            gpu = hw.primary_gpu if hw.gpu_offload else None
            if gpu is not None and gpu.usable_bytes:
                have += f" and {format_bytes(gpu.usable_bytes)} of GPU memory"
        return Fit(UNKNOWN, f"Not estimated yet: Hearth plans a model from its file's header, so the verdict comes "
                            f"once it is downloaded. The file is {format_bytes(m.size)}; {have}.")

    def refresh_badges(self) -> None:
        for key, card in self.file_cards.items():
            m = self._files.get(key)
            if m is not None and card.badge is not None:
                card.badge.set_fit(self._size_fit(m))

    def download(self, repo: RemoteRepo, m: RemoteModelFile) -> None:
        n = len(m.files)
        for i, f in enumerate(m.files, 1):
            title = m.name if n == 1 else f"{m.name} (part {i} of {n})"
            self.page.downloads.download(DownloadRequest(repo.repo_id, f.filename, revision=f.revision), title)


def _license(tags: tuple[str, ...]) -> str:
    lic = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), "")
    return f"license {lic}" if lic else "license not stated"


def _message(error: BaseException) -> str:
    return str(error) if isinstance(error, HearthError) else f"Unexpected error: {error}"
