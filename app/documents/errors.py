"""Why a document could not be added, one class per case the UI treats differently.

Every message names the file and says what the person can do about it.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import DocumentError


class DocumentInputError(DocumentError):
    """Base for the cases below; ``path`` is the file concerned (if known)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class UnsupportedDocument(DocumentInputError):
    """Not a kind of file Hearth can read (image, archive, program, old .doc ...)."""


class PasswordRequired(DocumentInputError):
    """The PDF is encrypted: ask for its password and add it again with ``password=``."""

    def __init__(self, message: str, path: str | None = None, *, wrong_password: bool = False) -> None:
        super().__init__(message, path)
        self.wrong_password = wrong_password


class NoTextFound(DocumentInputError):
    """The file opened but holds no text (a scanned PDF, a DOCX of images)."""


class EmptyDocument(DocumentInputError):
    """The file has no content at all (0 bytes)."""


class DocumentTooLarge(DocumentInputError):
    """The file (or its text) is over Hearth's limit."""

    def __init__(self, message: str, path: str | None = None, *, size: int = 0, limit: int = 0) -> None:
        super().__init__(message, path)
        self.size = size
        self.limit = limit


class CorruptDocument(DocumentInputError):
    """The content does not match its type: damaged, truncated or renamed."""


class UnreadableDocument(DocumentInputError):
    """The operating system refused to read it (missing, permissions, a folder)."""


def unreadable(path: Path, exc: OSError) -> UnreadableDocument:
    """An OSError while reading, worded for a person."""
    name = path.name
    if isinstance(exc, FileNotFoundError):
        return UnreadableDocument(
            f"{name} cannot be found in {path.absolute().parent}. It may have been moved, renamed or deleted.",
            str(path))
    if isinstance(exc, PermissionError):
        return UnreadableDocument(
            f"{name} cannot be read: permission denied. Check the file's permissions, or copy it to a "
            "folder you can read.", str(path))
    if isinstance(exc, IsADirectoryError):
        return UnreadableDocument(f"{name} is a folder; add the files inside it instead.", str(path))
    return UnreadableDocument(f"{name} cannot be read ({exc.strerror or exc}).", str(path))
