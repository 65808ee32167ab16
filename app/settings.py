"""Typed, versioned settings stored as JSON under the config dir (never pickled).

Unknown keys from a newer version are kept on save so a downgrade loses nothing;
a file that cannot be parsed is moved aside (never deleted) and defaults are used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from app.errors import SettingsError

# Proxy kinds Hearth supports for metadata requests and file transfers alike.
PROXY_SCHEMES = ("http", "socks5", "socks5h")

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    # sampling; None = the model family's recommendation (gpt-oss: 1.0 / 1.0)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 4096
    context_size: int | None = None  # None = the planner's choice
    threads: int | None = None  # None = the planner's choice
    system_prompt: str = ""
    reasoning_effort: str = "medium"
    default_preset: str = ""  # the preset new chats start with ("" = none: the settings above)
    overflow: str = "drop"  # a long chat's overflow policy for new chats: drop | summarize
    # models and network
    models_dir: str | None = None
    last_model: str | None = None
    load_last_model: bool = True  # the window loads the last used model when it opens
    offline: bool = False
    python_tool: bool = True  # offer gpt-oss its built-in python tool (sandboxed, per conversation)
    hf_endpoint: str | None = None
    proxy: str | None = None
    embedding_model: str | None = None  # None = the first installed embedding GGUF
    # prompt-state cache
    state_cache_bytes: int = 1 << 30
    save_states_on_exit: bool = False
    saved_state_max_bytes: int = 256 << 20
    # plan overrides (Advanced)
    gpu_layers_override: int | None = None
    cpu_moe_override: int | None = None
    kv_cache: str = "auto"  # auto (f16, 8-bit offered when it fits far more context) | f16 | q8_0
    # local API server (Settings › Local server; also `hearth serve`)
    server_enabled: bool = False  # off by default: nothing listens unless the user says so
    server_port: int = 8642
    server_api_key: str | None = None
    server_save_requests_to_history: bool = False
    server_cors_origins: list[str] = field(default_factory=list)
    # window
    theme: str = "system"  # system | light | dark
    first_run_done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.temperature is not None and not 0.0 <= self.temperature <= 5.0:
            raise SettingsError("Temperature must be between 0 and 5.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise SettingsError("Top-p must be greater than 0 and at most 1.")
        if self.max_tokens < 1:
            raise SettingsError("Max tokens must be at least 1.")
        if self.context_size is not None and self.context_size < 256:
            raise SettingsError("Context size must be at least 256 tokens.")
        if self.threads is not None and self.threads < 1:
            raise SettingsError("Threads must be at least 1.")
        if self.reasoning_effort not in ("low", "medium", "high"):
            raise SettingsError("Reasoning effort must be low, medium or high.")
        if self.overflow not in ("drop", "summarize"):
            raise SettingsError("When a chat outgrows the context, Hearth can drop or summarize earlier turns.")
        if self.gpu_layers_override is not None and self.gpu_layers_override < -1:
            raise SettingsError("GPU layers must be -1 (all), 0 or more.")
        if self.cpu_moe_override is not None and self.cpu_moe_override < 0:
            raise SettingsError("CPU expert layers must be 0 or more.")
        if self.kv_cache not in ("auto", "f16", "q8_0"):
            raise SettingsError("KV cache must be auto, f16 or q8_0.")
        if self.state_cache_bytes < 0:
            raise SettingsError("The conversation-state cache size cannot be negative.")
        if self.saved_state_max_bytes < (1 << 20):
            raise SettingsError("The largest saved conversation state must be at least 1 MB.")
        if not 0 <= self.server_port <= 65535:
            raise SettingsError("The local server's port must be from 0 to 65535.")
        if not all(isinstance(o, str) and o.startswith(("http://", "https://")) for o in self.server_cors_origins):
            raise SettingsError("Each allowed origin of the local server must start with http:// or https://.")
        if self.hf_endpoint and not self.hf_endpoint.startswith(("http://", "https://")):
            raise SettingsError("Mirror endpoint must be a URL starting with http:// or https://.")
        if self.proxy and not self.proxy.lower().startswith(tuple(f"{s}://" for s in PROXY_SCHEMES)):
            # Only what both the metadata requests (httpx) and the file transfer
            # (app/models/fetch.py) can use: an https:// proxy would fail part-way.
            raise SettingsError(
                "Proxy must be a URL starting with http://, socks5:// or socks5h:// (for example "
                "http://proxy.example:3128). HTTPS proxies are not supported; most also accept http://."
            )


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 called the context size "n_ctx".
    if "n_ctx" in data:
        data["context_size"] = data.pop("n_ctx")
    data["schema_version"] = 2
    return data


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2}


def settings_from_dict(data: dict[str, Any]) -> Settings:
    version = int(data.get("schema_version", 1))
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](dict(data))
        version = int(data["schema_version"])
    known = {f.name for f in fields(Settings)}
    kwargs = {k: v for k, v in data.items() if k in known}
    extra = {k: v for k, v in data.items() if k not in known}
    s = Settings(**kwargs)
    s.extra.update(extra)
    s.schema_version = SCHEMA_VERSION
    return s


def load_settings(path: Path) -> Settings:
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        s = settings_from_dict(data)
        try:
            s.validate()
        except SettingsError as exc:
            # One bad value (say, a hand edit) must not cost the others: reset only
            # the fields that fail on their own, and keep the original file aside.
            bad = [f.name for f in fields(Settings) if f.name not in ("schema_version", "extra")
                   and not _field_ok(f.name, getattr(s, f.name))]
            log.warning("settings file %s has invalid values (%s): %s reset to defaults", path, exc, bad)
            shutil.copyfile(path, path.with_suffix(".broken.json"))
            for name in bad:
                setattr(s, name, getattr(Settings(), name))
            s.validate()
        return s
    except (OSError, ValueError, TypeError, KeyError, SettingsError) as exc:
        aside = path.with_suffix(".broken.json")
        log.warning("settings file %s is unreadable (%s); kept as %s, using defaults", path, exc, aside)
        try:
            os.replace(path, aside)
        except OSError:
            pass
        return Settings()


def _field_ok(name: str, value: Any) -> bool:
    try:
        Settings(**{name: value}).validate()
    except (SettingsError, TypeError, ValueError):
        return False
    return True


def save_settings(settings: Settings, path: Path) -> None:
    settings.validate()
    data = asdict(settings)
    extra = data.pop("extra", {})
    data.update({k: v for k, v in extra.items() if k not in data})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SettingsError(f"Could not save settings to {path}: {exc.strerror or exc}") from exc
