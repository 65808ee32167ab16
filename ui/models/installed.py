"""The Models page's Installed tab: usable models (Load, Delete), unfinished downloads (Resume),
models found in the Hugging Face cache (Use), and files that cannot be used (with the reason)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QLabel, QMessageBox, QScrollArea, QVBoxLayout, QWidget

from app.models import InstalledModel
from app.models.library import IN_PLACE, PartialDownload
from app.models.units import format_bytes, format_params
from ui.models.widgets import ModelCard, clear_layout, context_text, muted_label, section_label, set_error_style

if TYPE_CHECKING:
    from ui.models.page import ModelsPage

EMPTY_INSTALLED = ("No models yet. Download one from the Catalog tab, or add a .gguf file you already have: "
                   "Import…, or drop it on this page.")
DROP_HINT = "Drop .gguf files here to add them."


class InstalledTab(QScrollArea):
    """Everything in the models folder and the library, rebuilt after each scan."""

    def __init__(self, page: ModelsPage) -> None:
        super().__init__()
        self.page = page
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.cards: dict[str, ModelCard] = {}  # installed model name -> card
        self.partial_cards: dict[str, ModelCard] = {}  # part file name (without .part) -> card
        self.cache_cards: dict[str, ModelCard] = {}  # cache snapshot path -> card
        body = QWidget()
        self.setWidget(body)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(0, 8, 0, 0)
        outer.addWidget(muted_label(DROP_HINT))
        self.col = QVBoxLayout()
        outer.addLayout(self.col)
        outer.addStretch(1)
        self.rebuild()

    def rebuild(self) -> None:
        page = self.page
        clear_layout(self.col)
        self.cards, self.partial_cards, self.cache_cards = {}, {}, {}
        scan = page.scan_result
        if scan is None:
            self.col.addWidget(muted_label("Looking for models…"))
            return
        if not scan.models:
            self.col.addWidget(muted_label(EMPTY_INSTALLED))
        for m in scan.models:
            self.cards[m.name] = self._model_card(m)
            self.col.addWidget(self.cards[m.name])
        mine = page.downloads.basenames()  # shown in the Downloads list instead
        partials = [p for p in scan.partial if p.filename not in mine]
        if partials:
            self.col.addWidget(section_label("Unfinished downloads"))
        for p in partials:
            self.partial_cards[p.filename] = self._partial_card(p)
            self.col.addWidget(self.partial_cards[p.filename])
        if scan.cached:
            self.col.addWidget(section_label("Found in the Hugging Face cache"))
        for c in scan.cached:
            card = ModelCard(c.name, [c.repo_id, format_bytes(c.size), f"{c.n_parts} files" if c.n_parts > 1 else ""],
                             detail=str(c.path))
            card.add_button("use", "Use", partial(page.import_files, [c.path], copy=False),
                            tip="Add it to Hearth where it is: nothing is copied or downloaded",
                            accessible=f"Use {c.name} from the Hugging Face cache")
            self.cache_cards[str(c.path)] = card
            self.col.addWidget(card)
        if scan.problems:
            self.col.addWidget(section_label("Files that cannot be used"))
        for prob in scan.problems:
            lab = QLabel(prob.message)
            lab.setWordWrap(True)
            set_error_style(lab, True)
            self.col.addWidget(lab)

    def _model_card(self, m: InstalledModel) -> ModelCard:
        where = "Used where it is: " if m.location == IN_PLACE else "In the models folder: "
        card = ModelCard(m.title or m.name, [
            m.architecture, f"{format_params(m.n_params)} parameters", m.quantization, context_text(m.n_ctx_train),
            f"{format_bytes(m.size_bytes)} on disk",
        ], detail=where + str(m.path), fit=self.page.fit_for(f"installed:{m.name}"))
        card.add_button("load", "Load", lambda: self.page.load_path(str(m.path)), accessible=f"Load {m.name}")
        card.add_button("delete", "Remove" if m.location == IN_PLACE else "Delete", lambda: self.delete(m),
                        accessible=f"Delete {m.name}")
        return card

    def _partial_card(self, p: PartialDownload) -> ModelCard:
        done = f"{format_bytes(p.bytes_done)} of {format_bytes(p.total)}" if p.total else format_bytes(p.bytes_done)
        card = ModelCard(p.filename, [f"{done} downloaded", "not usable until it is finished and verified"])
        if p.request is not None:
            request = p.request
            card.add_button("resume", "Resume", lambda: self.page.downloads.download(request, p.filename),
                            accessible=f"Resume download of {p.filename}")
        card.add_button("delete", "Delete", lambda: self.delete_partial(p),
                        accessible=f"Delete partial download of {p.filename}")
        return card

    # ---- deleting ----------------------------------------------------------

    def delete(self, model: InstalledModel) -> None:
        """Ask, then delete the model's files (a model used in place is only taken off the list)."""
        if model.location == IN_PLACE:
            title = "Remove model"
            question = f"Remove {model.name} from Hearth's list? The file stays where it is:\n{model.path}"
        else:
            title = "Delete model"
            question = (f"Delete {model.name}? Its file is deleted from the models folder, freeing "
                        f"{format_bytes(model.size_bytes)}.")
        if not _confirm(self, title, question):
            return
        page = self.page
        library = page.current_library()

        def done(result: Any, error: Exception | None) -> None:
            if error is not None:
                page.show_notice(page.message(error), error=True)
            elif result.deleted:
                page.show_notice(f"Deleted {result.name}: {format_bytes(result.freed_bytes)} freed.")
            else:
                page.show_notice(f"Removed {result.name} from the list; its file was left where it is.")
            page.refresh()

        page.worker.call("delete", lambda _cancel: library.remove(model.name), done)

    def delete_partial(self, partial: PartialDownload) -> None:
        if not _confirm(self, "Delete partial download", f"Delete the unfinished download of {partial.filename} "
                                                         f"({format_bytes(partial.bytes_done)})?"):
            return
        page = self.page
        library = page.current_library()

        def done(_result: Any, error: Exception | None) -> None:
            if error is not None:
                page.show_notice(page.message(error), error=True)
            page.refresh()

        page.worker.call("delete", lambda _cancel: library.remove_partial(partial.filename), done)


def _confirm(parent: QWidget, title: str, question: str) -> bool:
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
