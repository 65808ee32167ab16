"""Widgets of the document chat: the attachments bar above the composer and the drop overlay."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QProgressBar, QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from app.documents.extract import human_size
from app.documents.models import Attachment, Embedding, Extracting, IngestProgress, Indexing, Reading
from ui.widgets.theme import ACCENT

PROGRESS_STEPS = 1000
KIND_ICONS = {"pdf": "📕", "docx": "📘", "markdown": "📝", "html": "🌐", "csv": "📊", "code": "⌨", "text": "📄"}


def phase_text(ev: IngestProgress) -> str:
    """What a progress row says the file is going through."""
    if isinstance(ev, Reading):
        return "Reading…"
    if isinstance(ev, Extracting):
        return f"Page {ev.page} of {ev.n_pages}" if ev.n_pages and ev.n_pages > 1 else "Extracting text…"
    if isinstance(ev, Indexing):
        return "Indexing…"
    if isinstance(ev, Embedding):
        return "Embedding…"
    return ""


def attachment_detail(a: Attachment) -> str:
    """What a chip says after the name: pages for paged documents, size otherwise."""
    if a.kind in ("pdf", "docx") and a.n_pages:
        return f"{a.n_pages} page{'s' if a.n_pages != 1 else ''}"
    return human_size(a.size)


class AttachmentChip(QFrame):
    """One attached document: icon, name, pages or size, and a remove button."""

    remove_requested = Signal(int)  # document id

    def __init__(self, attachment: Attachment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.attachment = attachment
        self.setObjectName("attachmentChip")
        self.setStyleSheet("QFrame#attachmentChip { border: 1px solid palette(mid); border-radius: 10px; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 2, 2)
        lay.setSpacing(4)
        icon = KIND_ICONS.get(attachment.kind, "📄")
        self.label = QLabel(f"{icon} {attachment.name} · {attachment_detail(attachment)}")
        self.label.setToolTip(f"{attachment.path}\n{human_size(attachment.size)}, {attachment.n_chunks} passages")
        lay.addWidget(self.label)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setToolTip(f"Remove {attachment.name} from this chat")
        self.remove_button.setAccessibleName(f"Remove {attachment.name}")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(attachment.document_id))
        lay.addWidget(self.remove_button)
        self.setAccessibleName(f"Attached: {attachment.name}, {attachment_detail(attachment)}")


class IngestRow(QWidget):
    """A file being added: name, what is happening, a progress bar and Cancel."""

    cancel_requested = Signal(int)  # task id

    def __init__(self, task_id: int, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_id = task_id
        self.name = name
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.name_label = QLabel(name)
        self.name_label.setMinimumWidth(80)
        self.name_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.name_label, 2)
        self.phase_label = QLabel("Waiting…")
        self.phase_label.setObjectName("ingestPhase")
        lay.addWidget(self.phase_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress.setAccessibleName(f"Progress adding {name}")
        lay.addWidget(self.progress, 2)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel adding {name}")
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit(self.task_id))
        lay.addWidget(self.cancel_button)

    def set_progress(self, fraction: float, phase: str) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * PROGRESS_STEPS))
        self.phase_label.setText(phase)


class NoticeRow(QWidget):
    """Why a file was not added, kept until dismissed."""

    dismissed = Signal(int)  # notice id

    def __init__(self, notice_id: int, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notice_id = notice_id
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(f"⚠ {message}")
        self.label.setObjectName("errorLabel")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Attachment problem")
        self.label.setAccessibleDescription(message)
        lay.addWidget(self.label, 1)
        self.dismiss_button = QToolButton()
        self.dismiss_button.setText("Dismiss")
        self.dismiss_button.setAccessibleName("Dismiss this message")
        self.dismiss_button.clicked.connect(lambda: self.dismissed.emit(self.notice_id))
        lay.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.message = message


class AttachmentsBar(QWidget):
    """Above the composer: the chat's attached documents, files being added, problems."""

    remove_requested = Signal(int)  # document id
    cancel_requested = Signal(int)  # task id
    notice_dismissed = Signal(int)  # notice id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentsBar")
        self.setAccessibleName("Attached documents")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 6, 16, 0)
        outer.setSpacing(4)
        self._chips_area = QScrollArea()
        self._chips_area.setFrameShape(QFrame.Shape.NoFrame)
        self._chips_area.setWidgetResizable(True)
        self._chips_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._chips_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        inner = QWidget()
        self._chips_lay = QHBoxLayout(inner)
        self._chips_lay.setContentsMargins(0, 0, 0, 0)
        self._chips_lay.setSpacing(6)
        self._chips_lay.addStretch(1)
        self._chips_area.setWidget(inner)
        outer.addWidget(self._chips_area)
        self._rows_lay = QVBoxLayout()
        self._rows_lay.setSpacing(2)
        outer.addLayout(self._rows_lay)
        self.chips: dict[int, AttachmentChip] = {}  # by document id
        self.rows: dict[int, IngestRow] = {}  # by task id
        self.notices: dict[int, NoticeRow] = {}  # by notice id
        self._update_visibility()

    # ---- chips -------------------------------------------------------------

    def set_attachments(self, attachments: list[Attachment], hidden: frozenset[int] = frozenset()) -> None:
        """Show these documents' chips, in order; ``hidden`` ones are being removed."""
        wanted = {a.document_id: a for a in attachments}
        for doc_id in [d for d in self.chips if d not in wanted or self.chips[d].attachment != wanted[d]]:
            chip = self.chips.pop(doc_id)
            self._chips_lay.removeWidget(chip)
            chip.deleteLater()
        for a in attachments:
            if a.document_id in self.chips:
                continue
            chip = AttachmentChip(a)
            chip.remove_requested.connect(self.remove_requested)
            self._chips_lay.insertWidget(self._chips_lay.count() - 1, chip)
            self.chips[a.document_id] = chip
        self._order_chips([a.document_id for a in attachments])
        for doc_id, chip in self.chips.items():
            chip.setHidden(doc_id in hidden)
        self._update_visibility()

    def _order_chips(self, order: list[int]) -> None:
        for i, doc_id in enumerate(order):
            chip = self.chips[doc_id]
            if self._chips_lay.indexOf(chip) != i:
                self._chips_lay.removeWidget(chip)
                self._chips_lay.insertWidget(i, chip)

    # ---- rows --------------------------------------------------------------

    def add_row(self, task_id: int, name: str) -> IngestRow:
        row = self.rows.get(task_id)
        if row is None:
            row = IngestRow(task_id, name)
            row.cancel_requested.connect(self.cancel_requested)
            self._rows_lay.addWidget(row)
            self.rows[task_id] = row
            self._update_visibility()
        return row

    def remove_row(self, task_id: int) -> None:
        row = self.rows.pop(task_id, None)
        if row is not None:
            self._rows_lay.removeWidget(row)
            row.deleteLater()
        self._update_visibility()

    def add_notice(self, notice_id: int, message: str) -> NoticeRow:
        row = NoticeRow(notice_id, message)
        row.dismissed.connect(self.notice_dismissed)
        self._rows_lay.addWidget(row)
        self.notices[notice_id] = row
        self._update_visibility()
        return row

    def remove_notice(self, notice_id: int) -> None:
        row = self.notices.pop(notice_id, None)
        if row is not None:
            self._rows_lay.removeWidget(row)
            row.deleteLater()
        self._update_visibility()

    def clear_rows(self) -> None:
        for task_id in list(self.rows):
            self.remove_row(task_id)
        for notice_id in list(self.notices):
            self.remove_notice(notice_id)

    def _update_visibility(self) -> None:
        any_chip = any(not c.isHidden() for c in self.chips.values())
        self._chips_area.setVisible(any_chip)
        if any_chip:
            # One line of chips (plus room for a horizontal scroll bar when they overflow).
            h = max(c.sizeHint().height() for c in self.chips.values())
            self._chips_area.setFixedHeight(h + self._chips_area.horizontalScrollBar().sizeHint().height() + 2)
        self.setVisible(any_chip or bool(self.rows) or bool(self.notices))


class DropOverlay(QLabel):
    """Covers the chat while files are dragged over the window."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("dropOverlay")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        # Drag events must reach the widgets (and the window) underneath.
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setStyleSheet(
            f"QLabel#dropOverlay {{ background: rgba(217, 98, 43, 40); border: 2px dashed {ACCENT};"
            " border-radius: 14px; font-size: 20px; font-weight: bold; margin: 12px; }")
        self.setAccessibleName("Drop files here")
        self.hide()

    def show_over(self, text: str) -> None:
        self.setText(text)
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.raise_()
        self.show()
