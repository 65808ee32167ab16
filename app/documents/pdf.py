"""PDF text through pypdfium2 (PDFium, BSD/Apache), one page at a time.

PDFium is not thread-safe, so every call into it holds one process-wide lock;
the lock is taken per page so two ingestions interleave instead of queueing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from app.documents.errors import CorruptDocument, EmptyDocument, PasswordRequired, UnsupportedDocument, unreadable
from app.documents.pages import Extraction, Page, normalize

log = logging.getLogger(__name__)

PDFIUM_LOCK = threading.RLock()


class PdfExtraction(Extraction):
    def __init__(self, path: Path, password: str | None = None) -> None:
        super().__init__(str(path), path.name, "pdf", None)
        # A Python file object rather than a path: PDFium's own path handling
        # mangles non-ASCII names on Windows.
        try:
            self._file: IO[bytes] | None = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise unreadable(path, exc) from exc
        self._pdf: Any = None
        try:
            with PDFIUM_LOCK:
                self._pdf = self._open(password)
                self.n_pages = len(self._pdf)
                self._headings = self._outline()
        except BaseException:
            self.close()
            raise

    def _open(self, password: str | None) -> Any:
        name = self.name
        try:
            return pdfium.PdfDocument(self._file, password=password)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == pdfium_c.FPDF_ERR_PASSWORD:
                if password:
                    raise PasswordRequired(
                        f"The password for {name} is not correct. Check it and try again.",
                        self.path, wrong_password=True) from exc
                raise PasswordRequired(
                    f"{name} is protected by a password. Enter its password to add it.", self.path) from exc
            if code == pdfium_c.FPDF_ERR_SECURITY:
                raise UnsupportedDocument(
                    f"{name} uses a kind of encryption Hearth cannot open. Save an unprotected copy from your "
                    "PDF viewer and add that.", self.path) from exc
            if code == pdfium_c.FPDF_ERR_SUCCESS:
                # PDFium opened it but found no pages.
                raise EmptyDocument(f"{name} is a PDF with no pages; there is nothing in it to read.",
                                    self.path) from exc
            raise CorruptDocument(
                f"{name} is damaged or not a valid PDF, so it cannot be read. Try opening it in a PDF viewer "
                "and saving a new copy.", self.path) from exc

    def _outline(self) -> dict[int, list[str]]:
        """Bookmark titles by page index: the PDF's own headings, where it has an outline."""
        out: dict[int, list[str]] = {}
        try:
            for bm in self._pdf.get_toc(max_depth=4):
                dest = bm.get_dest()
                index = dest.get_index() if dest is not None else None
                title = " ".join(bm.get_title().split())
                if index is not None and title:
                    out.setdefault(int(index), []).append(title)
        except (pdfium.PdfiumError, ValueError, OSError) as exc:
            # A broken outline costs headings, not the document.
            log.info("ignoring the outline of %s: %s", self.name, exc)
        return out

    def iter_pages(self) -> Iterator[Page]:
        for i in range(self.n_pages or 0):
            with PDFIUM_LOCK:
                if self._pdf is None:
                    return
                text = self._page_text(i)
            headings = [(0, t) for t in self._headings.get(i, [])]
            yield Page(i + 1, normalize(text), headings)

    def _page_text(self, index: int) -> str:
        try:
            page = self._pdf[index]
        except pdfium.PdfiumError as exc:
            log.warning("page %d of %s cannot be loaded: %s", index + 1, self.name, exc)
            return ""
        try:
            textpage = page.get_textpage()
            try:
                return str(textpage.get_text_range())
            finally:
                textpage.close()
        except pdfium.PdfiumError as exc:
            log.warning("no text from page %d of %s: %s", index + 1, self.name, exc)
            return ""
        finally:
            page.close()

    def close(self) -> None:
        with PDFIUM_LOCK:
            if self._pdf is not None:
                self._pdf.close()
                self._pdf = None
        if self._file is not None:
            self._file.close()
            self._file = None
