"""One error hierarchy for Hearth; every message is written for a person to act on."""

from __future__ import annotations


class HearthError(Exception):
    """Base class: ``str(err)`` is a message fit to show the user."""


class ModelLoadError(HearthError):
    """A model file could not be opened or loaded."""


class NotGGUFError(ModelLoadError):
    """The file is not a GGUF model (wrong magic, truncated, unreadable)."""


class EngineError(HearthError):
    """The inference worker failed or stopped."""


class WorkerDied(EngineError):
    """The worker process exited unexpectedly (crash, out of memory, killed)."""


class ContextOverflow(EngineError):
    """The prompt does not fit in the model's context window."""


class StorageError(HearthError):
    """The history database cannot be used (corrupt, newer schema, unwritable)."""


class StorageReadOnly(StorageError):
    """The history database, or the folder that holds it, cannot be written."""


class SearchIndexDamaged(StorageError):
    """The full-text search index is damaged (the history itself is intact);
    ``ConversationStore.rebuild_search_index()`` repairs it."""


class SettingsError(HearthError):
    """The settings file cannot be read or written."""


class DownloadError(HearthError):
    """A model download failed."""


class DocumentError(HearthError):
    """A document could not be read or indexed."""


class Cancelled(HearthError):
    """The user cancelled the operation."""


class McpError(HearthError):
    """An MCP server could not be configured, started or called."""
