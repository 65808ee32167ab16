"""Errors of the model manager, each worded so the user knows what happened and what to do."""

from __future__ import annotations

from app.errors import DownloadError, HearthError, ModelLoadError


class OfflineError(HearthError):
    """Offline mode is on, so Hearth refused to open a network connection."""


class HubError(DownloadError):
    """Talking to Hugging Face (or the configured mirror) failed."""


class AuthRequiredError(HubError):
    """The repository is gated or private and the token is missing, wrong or lacks access."""


class RemoteNotFoundError(HubError):
    """The repository, revision or file does not exist on the server."""


class NetworkError(HubError):
    """The server could not be reached or kept failing after every retry."""


class UnsafeFileNameError(DownloadError):
    """A remote or typed file name is not a plain file name, so it cannot become a path in the models folder."""


class DiskFullError(DownloadError):
    """Not enough free space in the models folder."""


class HashMismatchError(DownloadError):
    """The downloaded bytes do not match the published sha256; the file was deleted."""


class KeyringUnavailableError(HearthError):
    """No system keyring can store the Hugging Face token."""


class ModelNotInstalledError(HearthError):
    """No installed model has the given name."""


class ImportRejectedError(ModelLoadError):
    """A file offered for import is not a GGUF model this Hearth can run."""
