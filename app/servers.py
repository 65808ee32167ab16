"""Remote servers the user added: names and addresses in ``servers.json``, API keys in the OS keyring.

The file never holds a key. Where the keyring has no backend the user is told
and may keep a key for this run only (never a plain-text fallback). Offline
mode blocks every server that is not on this computer; the first message to a
server asks once, and the answer is kept (``approved``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import keyring
import keyring.errors

from app.engine.remote import (
    RemoteEngine, RemoteError, Timeouts, host_of, is_loopback, normalize_base_url, offline_message,
)
from app.errors import HearthError, SettingsError
from app.jsonfile import write_json_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KEYRING_SERVICE = "Hearth"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,63}$")
NO_KEYRING = (
    "No system keyring is available to store the API key (on Linux, install and unlock GNOME Keyring "
    "or KWallet). Hearth can keep the key for this session only; it is never written to a file."
)


class ServerError(HearthError):
    """A server entry cannot be added, found or used."""


class KeyringUnavailable(ServerError):
    """No keyring can store an API key; ``save_key(..., remember=False)`` keeps it for this run."""


@dataclass
class ServerConfig:
    name: str
    url: str  # normalized base URL, e.g. http://gpu-box.lan:8000/v1
    approved: bool = False  # the user agreed to send conversations to it
    models: list[str] = field(default_factory=list)  # as last listed (the picker shows them offline)

    @property
    def host(self) -> str:
        return host_of(self.url)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.url)


def _key_user(url: str) -> str:
    return f"server-key:{url}"


class ServerStore:
    """The user's servers. Thread-safe; every change is written at once."""

    def __init__(self, config_dir: Path, *, is_offline: Callable[[], bool] | None = None) -> None:
        self.path = Path(config_dir) / "servers.json"
        self._is_offline = is_offline or (lambda: False)
        self._lock = threading.RLock()
        self._session_keys: dict[str, str] = {}
        self._servers: list[ServerConfig] = self._load()

    # -- file ----------------------------------------------------------------------

    def _load(self) -> list[ServerConfig]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            items = data.get("servers", []) if isinstance(data, dict) else []
            out = []
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    continue
                out.append(ServerConfig(
                    name=item["name"], url=normalize_base_url(str(item.get("url", ""))),
                    approved=bool(item.get("approved", False)),
                    models=[m for m in item.get("models", []) if isinstance(m, str)],
                ))
            return out
        except (OSError, ValueError) as exc:
            aside = self.path.with_suffix(".broken.json")
            log.warning("servers file %s is unreadable (%s); kept as %s", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return []

    def _save(self) -> None:
        data = {"schema_version": SCHEMA_VERSION, "servers": [asdict(s) for s in self._servers]}
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            raise SettingsError(f"Could not save the server list to {self.path}: {exc.strerror or exc}") from exc

    # -- entries -------------------------------------------------------------------

    def list(self) -> list[ServerConfig]:
        with self._lock:
            return [ServerConfig(**asdict(s)) for s in self._servers]

    def get(self, name: str) -> ServerConfig:
        with self._lock:
            for s in self._servers:
                if s.name == name:
                    return ServerConfig(**asdict(s))
        known = ", ".join(s.name for s in self._servers) or "none yet"
        raise ServerError(f"There is no server named {name!r} (servers: {known}). Add it in Settings › Servers "
                          "or with: hearth servers add NAME URL")

    def find(self, name_or_url: str) -> ServerConfig | None:
        """A saved server by name, or by address (any spelling that normalizes the same)."""
        with self._lock:
            for s in self._servers:
                if s.name == name_or_url:
                    return ServerConfig(**asdict(s))
            try:
                url = normalize_base_url(name_or_url)
            except ValueError:
                return None
            for s in self._servers:
                if s.url == url:
                    return ServerConfig(**asdict(s))
        return None

    def add(self, name: str, url: str, *, api_key: str | None = None, remember_key: bool = True) -> ServerConfig:
        """Add (or replace) a server; raises ServerError for a bad name or address."""
        name = (name or "").strip()
        if not _NAME_RE.match(name):
            raise ServerError(f"{name!r} cannot be a server name: use letters, digits, spaces, '.', '_' or '-' "
                              "(at most 64 characters), starting with a letter or digit.")
        try:
            norm = normalize_base_url(url)
        except ValueError as exc:
            raise ServerError(f"Cannot add {name}: {exc}.") from exc
        with self._lock:
            old = next((s for s in self._servers if s.name == name), None)
            clash = next((s for s in self._servers if s.url == norm and s.name != name), None)
            if clash is not None:
                raise ServerError(f"{norm} is already saved as {clash.name!r}.")
            entry = ServerConfig(name, norm, approved=bool(old and old.url == norm and old.approved),
                                 models=list(old.models) if old and old.url == norm else [])
            if old is not None:
                self._servers[self._servers.index(old)] = entry
                if old.url != norm:
                    self._forget_key(old.url)
            else:
                self._servers.append(entry)
            self._save()
        if api_key:
            self.save_key(name, api_key, remember=remember_key)
        return ServerConfig(**asdict(entry))

    def remove(self, name: str) -> None:
        """Remove a server and its key (from the keyring too)."""
        with self._lock:
            entry = next((s for s in self._servers if s.name == name), None)
            if entry is None:
                self.get(name)  # raises with the list of names
                return
            self._servers.remove(entry)
            self._save()
        self._forget_key(entry.url)

    def _update(self, name: str, **changes: Any) -> None:
        with self._lock:
            for s in self._servers:
                if s.name == name:
                    for k, v in changes.items():
                        setattr(s, k, v)
                    self._save()
                    return
        self.get(name)

    def approve(self, name: str) -> None:
        """The user agreed to send conversations to this server (asked once)."""
        self._update(name, approved=True)

    def needs_approval(self, url: str) -> bool:
        """True until the user agrees to send to this address (servers on this computer never ask)."""
        if is_loopback(url):
            return False
        entry = self.find(url)
        return entry is None or not entry.approved

    def set_models(self, name: str, models: list[str]) -> None:
        self._update(name, models=list(models))

    # -- keys ----------------------------------------------------------------------------

    @staticmethod
    def keyring_status() -> tuple[bool, str]:
        """(usable, explanation): whether a key can be kept in the system keyring here."""
        backend = keyring.get_keyring()
        try:
            priority = float(getattr(backend, "priority", 0))
        except (TypeError, ValueError, keyring.errors.KeyringError):
            priority = 0
        name = type(backend).__module__ + "." + type(backend).__name__
        if priority <= 0 or name.startswith(("keyring.backends.fail", "keyring.backends.null")):
            return False, NO_KEYRING
        return True, f"API keys are kept in the system keyring ({type(backend).__name__})."

    def save_key(self, name: str, key: str, *, remember: bool = True) -> str:
        """Keep a server's API key; returns "keyring" or "session". Raises KeyringUnavailable."""
        entry = self.get(name)
        key = key.strip()
        if not key:
            raise ServerError("The API key is empty.")
        if not remember:
            with self._lock:
                self._session_keys[entry.url] = key
            return "session"
        usable, why = self.keyring_status()
        if not usable:
            raise KeyringUnavailable(why)
        try:
            keyring.set_password(KEYRING_SERVICE, _key_user(entry.url), key)
        except keyring.errors.KeyringError as exc:
            log.warning("saving a server key to the keyring failed: %s", type(exc).__name__)
            raise KeyringUnavailable(f"{NO_KEYRING} (The keyring said: {type(exc).__name__}.)") from exc
        with self._lock:
            self._session_keys.pop(entry.url, None)
        return "keyring"

    def key_for(self, url: str) -> str | None:
        """The API key kept for this address (session copy first, then the keyring)."""
        try:
            norm = normalize_base_url(url)
        except ValueError:
            return None
        with self._lock:
            if norm in self._session_keys:
                return self._session_keys[norm]
        try:
            return keyring.get_password(KEYRING_SERVICE, _key_user(norm)) or None
        except keyring.errors.KeyringError as exc:
            log.info("keyring unavailable for reading a server key: %s", type(exc).__name__)
            return None

    def has_key(self, name: str) -> bool:
        return self.key_for(self.get(name).url) is not None

    def _forget_key(self, url: str) -> None:
        with self._lock:
            self._session_keys.pop(url, None)
        try:
            keyring.delete_password(KEYRING_SERVICE, _key_user(url))
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            log.info("keyring unavailable for deleting a server key: %s", type(exc).__name__)

    # -- use ------------------------------------------------------------------------------

    def check_allowed(self, url: str) -> None:
        """Raise RemoteError("offline") when Offline mode forbids this address."""
        if self._is_offline() and not is_loopback(url):
            raise RemoteError(offline_message(url), "offline")

    def engine(self, name_or_url: str, model: str, *, api_key: str | None = None,
               timeouts: Timeouts | None = None) -> RemoteEngine:
        """A RemoteEngine for a saved server (or a bare address), with its stored key."""
        entry = self.find(name_or_url)
        url = entry.url if entry is not None else name_or_url
        try:
            url = normalize_base_url(url)
        except ValueError as exc:
            raise ServerError(f"{exc}.") from exc
        self.check_allowed(url)
        key = api_key if api_key is not None else self.key_for(url)
        return RemoteEngine(url, model, api_key=key, server_name=entry.name if entry else None,
                            timeouts=timeouts, is_offline=self._is_offline)


# ---- how a conversation names a remote model ------------------------------------------------

REMOTE_PREFIX = "remote:"


def remote_model_ref(url: str, model: str) -> str:
    """What a conversation stores as its model: ``remote:http://host:8000/v1#gpt-oss-120b``."""
    return f"{REMOTE_PREFIX}{normalize_base_url(url)}#{model}"


def parse_remote_ref(ref: str | None) -> tuple[str, str] | None:
    """(base URL, model) for a ``remote:`` reference; None for a local model path."""
    if not ref or not ref.startswith(REMOTE_PREFIX):
        return None
    url, sep, model = ref[len(REMOTE_PREFIX):].partition("#")
    if not sep or not model:
        return None
    return url, model
