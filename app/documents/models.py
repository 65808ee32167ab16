"""Plain data the documents core hands out: attachments, passages, ingestion progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import HearthError


def citation_label(file: str, page: int | None) -> str:
    """How a passage is cited: "report.pdf, p. 12" (or just the name without pages)."""
    return f"{file}, p. {page}" if page is not None else file


@dataclass(frozen=True)
class Attachment:
    """A document attached to a conversation (only fully indexed documents are attached)."""

    id: int
    conversation_id: int
    document_id: int
    name: str  # the file name as the user added it
    added_at: float
    path: str  # where it was read from (it may have moved since)
    kind: str  # pdf | docx | text | markdown | html | csv | code
    size: int
    n_pages: int
    n_chunks: int
    n_chars: int
    sha256: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk. ``start``/``end`` are offsets into its page's text (see page_text)."""

    file: str
    page: int | None
    text: str
    start: int
    end: int
    score: float  # higher is better
    chunk_id: int
    document_id: int
    heading: str | None = None

    @property
    def label(self) -> str:
        return citation_label(self.file, self.page)

    def citation(self) -> dict[str, Any]:
        """The citation dict stored with a reply (``file``, ``page``, ``text`` first)."""
        return {
            "file": self.file, "page": self.page, "text": self.text.strip(), "heading": self.heading,
            "document_id": self.document_id, "chunk_id": self.chunk_id, "start": self.start, "end": self.end,
        }


# ---- ingestion progress ---------------------------------------------------------
# Shares of the progress bar given to each phase (embedding only when enabled).
_READ, _EXTRACT, _INDEX = 0.05, 0.55, 0.95


@dataclass(frozen=True)
class IngestProgress:
    """Base of the events ``DocumentIndex.ingest`` yields; ``path`` identifies the file."""

    path: str
    name: str

    @property
    def fraction(self) -> float:
        """Overall progress 0..1, for a progress bar."""
        return 0.0


@dataclass(frozen=True)
class Reading(IngestProgress):
    """Reading the file to fingerprint it (sha256)."""

    done_bytes: int
    total_bytes: int

    @property
    def fraction(self) -> float:
        return _READ * self.done_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class Extracting(IngestProgress):
    page: int  # pages read so far
    n_pages: int | None

    @property
    def fraction(self) -> float:
        if not self.n_pages:
            return _READ
        return _READ + (_EXTRACT - _READ) * min(1.0, self.page / self.n_pages)


@dataclass(frozen=True)
class Indexing(IngestProgress):
    chunk: int  # chunks stored so far
    n_chunks: int

    @property
    def fraction(self) -> float:
        return _EXTRACT + (_INDEX - _EXTRACT) * (self.chunk / self.n_chunks if self.n_chunks else 1.0)


@dataclass(frozen=True)
class Embedding(IngestProgress):
    chunk: int
    n_chunks: int

    @property
    def fraction(self) -> float:
        return _INDEX + (1.0 - _INDEX) * (self.chunk / self.n_chunks if self.n_chunks else 1.0)


@dataclass(frozen=True)
class IngestDone(IngestProgress):
    attachment: Attachment
    reused: bool  # the same content was already indexed (nothing was read again)
    embedded: bool  # passages have embeddings for hybrid search
    note: str = ""  # something the user should know (e.g. why embeddings are missing)

    @property
    def fraction(self) -> float:
        return 1.0


@dataclass(frozen=True)
class IngestFailed(IngestProgress):
    error: HearthError  # str(error) is the message to show; PasswordRequired means ask for one

    @property
    def message(self) -> str:
        return str(self.error)

    @property
    def fraction(self) -> float:
        return 1.0


@dataclass(frozen=True)
class IngestCancelled(IngestProgress):
    @property
    def fraction(self) -> float:
        return 1.0
