"""The citation preview: the cited page's text with the passage highlighted."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextEdit, QVBoxLayout, QWidget

from app.documents.models import citation_label

HIGHLIGHT = QColor(255, 214, 102)  # a marker yellow that reads in light and dark themes
HIGHLIGHT_TEXT = QColor(31, 31, 31)


def utf16_offset(text: str, index: int) -> int:
    """Qt counts positions in UTF-16 code units; Python in code points."""
    return len(text[:index].encode("utf-16-le")) // 2


class CitationPreview(QDialog):
    """Non-modal: the user can keep reading the answer while it is open."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setObjectName("citationPreview")
        self.resize(620, 560)
        lay = QVBoxLayout(self)
        self.heading = QLabel("")
        self.heading.setObjectName("citationHeading")
        self.heading.setWordWrap(True)
        lay.addWidget(self.heading)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        lay.addWidget(self.note)
        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Cited page")
        lay.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.citation: dict[str, Any] = {}
        self.loading = False
        self.highlighted = ""  # the passage as highlighted (for tests and screen readers)

    def show_loading(self, citation: dict[str, Any]) -> None:
        self.citation = dict(citation)
        self.loading = True
        title = citation_label(str(citation.get("file") or "Document"), citation.get("page"))
        self.setWindowTitle(title)
        self.setAccessibleName(f"Citation preview: {title}")
        self.heading.setText(str(citation.get("heading") or ""))
        self.heading.setVisible(bool(citation.get("heading")))
        self.note.setVisible(False)
        self.text.setPlainText("Loading…")
        self.highlighted = ""
        self.show()
        self.raise_()
        self.activateWindow()

    def show_page(self, page_text: str, start: int, end: int) -> None:
        """The page's text with [start, end) (Python offsets) highlighted and scrolled into view."""
        self.loading = False
        self.note.setVisible(False)
        self._set_highlighted(page_text, start, end)

    def show_passage_only(self, text: str, note: str) -> None:
        """The cited text alone, when the page cannot be loaded any more."""
        self.loading = False
        self.note.setText(note)
        self.note.setVisible(True)
        self._set_highlighted(text, 0, len(text))

    def _set_highlighted(self, text: str, start: int, end: int) -> None:
        self.text.setPlainText(text)
        start = max(0, min(start, len(text)))
        end = max(start, min(end, len(text)))
        q_start, q_end = utf16_offset(text, start), utf16_offset(text, end)
        cur = QTextCursor(self.text.document())
        cur.setPosition(q_start)
        cur.setPosition(q_end, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(HIGHLIGHT)
        fmt.setForeground(HIGHLIGHT_TEXT)
        cur.mergeCharFormat(fmt)
        self.highlighted = text[start:end]
        # Show the end first, then the start: a passage taller than the view opens at its top.
        view = QTextCursor(self.text.document())
        view.setPosition(q_end)
        self.text.setTextCursor(view)
        self.text.ensureCursorVisible()
        view.setPosition(q_start)
        self.text.setTextCursor(view)
        self.text.ensureCursorVisible()

    def show_citation(self, citation: dict[str, Any], page_text: str) -> None:
        """Fill in the loaded page; the stored offsets are checked, then the quoted text is
        looked for, and when the page is gone the quote alone is shown."""
        quoted = str(citation.get("text") or "")
        try:
            start, end = int(citation.get("start", -1)), int(citation.get("end", -1))
        except (TypeError, ValueError):
            start = end = -1
        if page_text and 0 <= start < end <= len(page_text):
            self.show_page(page_text, start, end)
            return
        at = page_text.find(quoted.strip()) if page_text and quoted.strip() else -1
        if at >= 0:
            self.show_page(page_text, at, at + len(quoted.strip()))
            return
        self.show_passage_only(quoted, "This document is no longer attached to any chat, so only the cited "
                                       "passage can be shown.")
