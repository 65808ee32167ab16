"""The Hugging Face access token: kept in the OS keyring, or in memory for this run only.

Never in settings files, never in logs, and never in a plain-text file as a
fallback: where the keyring has no backend (a headless Linux box, a desktop
without GNOME Keyring or KWallet) the user is told so and may keep the token
for this session only.
"""

from __future__ import annotations

import logging
import os
import threading

import keyring
import keyring.errors

from app.models.errors import KeyringUnavailableError

log = logging.getLogger(__name__)

SERVICE = "Hearth"
USERNAME = "huggingface-token"
NO_KEYRING = (
    "No system keyring is available to store your Hugging Face token"
    " (on Linux, install and unlock GNOME Keyring or KWallet). "
    "Hearth can keep the token for this session only; it is never written to a file."
)


class TokenStore:
    """Get, save and forget the token. Thread-safe; the session copy wins over the keyring."""

    def __init__(self, service: str = SERVICE, username: str = USERNAME) -> None:
        self._service = service
        self._username = username
        self._session: str | None = None
        self._lock = threading.Lock()

    def keyring_status(self) -> tuple[bool, str]:
        """(usable, explanation): whether ``save(..., remember=True)`` can work here."""
        backend = keyring.get_keyring()
        try:
            priority = float(getattr(backend, "priority", 0))
        except (TypeError, ValueError, keyring.errors.KeyringError):
            priority = 0
        name = type(backend).__module__ + "." + type(backend).__name__
        if priority <= 0 or name.startswith(("keyring.backends.fail", "keyring.backends.null")):
            return False, NO_KEYRING
        return True, f"The token is kept in the system keyring ({type(backend).__name__})."

    def get(self) -> str | None:
        """The session token, else the keyring's, else ``$HF_TOKEN``; None when there is none."""
        with self._lock:
            if self._session:
                return self._session
        try:
            stored = keyring.get_password(self._service, self._username)
        except keyring.errors.KeyringError as exc:
            log.info("keyring unavailable for reading the Hugging Face token: %s", type(exc).__name__)
            stored = None
        return stored or os.environ.get("HF_TOKEN") or None

    @property
    def source(self) -> str | None:
        """Where ``get()`` finds the token: "session", "keyring", "environment" or None."""
        with self._lock:
            if self._session:
                return "session"
        try:
            if keyring.get_password(self._service, self._username):
                return "keyring"
        except keyring.errors.KeyringError:
            pass
        return "environment" if os.environ.get("HF_TOKEN") else None

    def save(self, token: str, *, remember: bool = True) -> str:
        """Keep the token; returns where ("keyring" or "session").

        ``remember=True`` writes it to the keyring and raises
        KeyringUnavailableError (message: NO_KEYRING) when there is none; call
        again with ``remember=False`` to keep it for this run only.
        """
        token = token.strip()
        if not token:
            raise ValueError("the token is empty")
        if not remember:
            with self._lock:
                self._session = token
            return "session"
        usable, why = self.keyring_status()
        if not usable:
            raise KeyringUnavailableError(why)
        try:
            keyring.set_password(self._service, self._username, token)
        except keyring.errors.KeyringError as exc:
            log.warning("saving the Hugging Face token to the keyring failed: %s", type(exc).__name__)
            raise KeyringUnavailableError(f"{NO_KEYRING} (The keyring said: {type(exc).__name__}.)") from exc
        with self._lock:
            self._session = None
        return "keyring"

    def clear(self) -> None:
        """Forget the token everywhere Hearth keeps it (the environment is the user's)."""
        with self._lock:
            self._session = None
        try:
            keyring.delete_password(self._service, self._username)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            log.info("keyring unavailable for deleting the token: %s", type(exc).__name__)
