"""Presets: named bundles of a conversation's instructions and sampling choices.

A preset sets a conversation's instructions (gpt-oss: the developer message),
reasoning effort, temperature, top-p, max tokens, whether tools are offered and
what happens when the conversation outgrows the context. Hearth ships a few; the
user's own live in ``presets.json`` next to the settings (JSON, never pickled)
and import/export as JSON. Applying a preset copies its values into the
conversation, so editing a preset later never changes past chats behind the
user's back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from app.errors import SettingsError
from app.jsonfile import write_json_atomic
from app.storage.conversations import ConversationStore

log = logging.getLogger(__name__)

EFFORTS = ("low", "medium", "high")
OVERFLOWS = ("drop", "summarize")
FORMAT = "hearth-presets"


@dataclass(frozen=True)
class Preset:
    name: str
    instructions: str = ""
    reasoning_effort: str = "medium"
    temperature: float | None = None  # None: the model family's recommendation
    top_p: float | None = None
    max_tokens: int | None = None  # None: Settings' max tokens
    tools: bool = True
    overflow: str = "drop"

    def options(self) -> dict[str, Any]:
        """The conversation options this preset sets (None values clear the option)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "tools": self.tools, "overflow": self.overflow, "preset": self.name}


BUILTIN_PRESETS: tuple[Preset, ...] = (
    Preset("Balanced"),
    Preset("Careful reasoner", reasoning_effort="high", max_tokens=8192,
           instructions="Think the problem through before answering. Check your reasoning and say how "
                        "sure you are when it matters."),
    Preset("Quick answers", reasoning_effort="low", max_tokens=1024,
           instructions="Answer briefly and directly. Use a list only when it helps."),
    Preset("Code helper", reasoning_effort="medium", temperature=0.6,
           instructions="You are a careful programming assistant. Give complete, runnable code in fenced "
                        "blocks with the language named, explain the changes briefly, and point out edge "
                        "cases and risks."),
)


def check_preset(data: Any, where: str = "preset") -> Preset:
    """A Preset from JSON-like data, or SettingsError naming the field and what is allowed."""
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: each preset must be a JSON object, not {type(data).__name__}.")
    known = {f.name for f in fields(Preset)}
    unknown = set(data) - known
    if unknown:
        raise SettingsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(known))}).")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise SettingsError(f"{where}: 'name' must be a non-empty text of at most 80 characters.")
    where = f"preset {name.strip()!r}"

    def num(key: str, lo: float, hi: float, integer: bool = False) -> Any:
        v = data.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise SettingsError(f"{where}: '{key}' must be a{'n integer' if integer else ' number'}.")
        if not lo <= v <= hi:
            raise SettingsError(f"{where}: '{key}' must be between {lo:g} and {hi:g}.")
        return v

    effort = data.get("reasoning_effort", "medium")
    if effort not in EFFORTS:
        raise SettingsError(f"{where}: 'reasoning_effort' must be one of {', '.join(EFFORTS)}.")
    overflow = data.get("overflow", "drop")
    if overflow not in OVERFLOWS:
        raise SettingsError(f"{where}: 'overflow' must be 'drop' or 'summarize'.")
    instructions = data.get("instructions", "")
    if not isinstance(instructions, str):
        raise SettingsError(f"{where}: 'instructions' must be text.")
    tools = data.get("tools", True)
    if not isinstance(tools, bool):
        raise SettingsError(f"{where}: 'tools' must be true or false.")
    return Preset(
        name=name.strip(), instructions=instructions, reasoning_effort=effort,
        temperature=num("temperature", 0, 5), top_p=num("top_p", 0, 1),
        max_tokens=num("max_tokens", 1, 1_000_000, integer=True), tools=tools, overflow=overflow,
    )


class PresetStore:
    """The built-in presets and the user's, kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _user(self) -> list[Preset]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("presets file %s cannot be read (%s); using the built-in presets", self.path, exc)
            return []
        out = []
        for item in raw.get("presets", []) if isinstance(raw, dict) else []:
            try:
                out.append(check_preset(item))
            except SettingsError as exc:
                log.warning("%s: %s (skipped)", self.path, exc)
        return out

    def all(self) -> list[Preset]:
        """Built-in presets (a user's preset of the same name replaces one), then the user's."""
        user = {p.name.casefold(): p for p in self._user()}
        out = [user.pop(b.name.casefold(), b) for b in BUILTIN_PRESETS]
        return out + list(user.values())

    def user_presets(self) -> list[Preset]:
        """The user's own presets (new ones, and built-ins the user changed)."""
        return self._user()

    def names(self) -> list[str]:
        return [p.name for p in self.all()]

    def get(self, name: str) -> Preset:
        for p in self.all():
            if p.name.casefold() == name.strip().casefold():
                return p
        raise KeyError(f"There is no preset named {name!r}. Presets: {', '.join(self.names())}.")

    def save(self, preset: Preset) -> None:
        check_preset(asdict(preset))
        user = [p for p in self._user() if p.name.casefold() != preset.name.casefold()]
        self._write(user + [preset])

    def delete(self, name: str) -> None:
        """Remove a user's preset (a built-in one comes back as shipped)."""
        self._write([p for p in self._user() if p.name.casefold() != name.casefold()])

    def export_json(self, names: list[str] | None = None) -> str:
        chosen = [p for p in self.all() if names is None or p.name in names]
        return json.dumps({"format": FORMAT, "version": 1, "presets": [asdict(p) for p in chosen]},
                          indent=2, ensure_ascii=False)

    def import_json(self, text: str) -> list[Preset]:
        """Add (or replace, by name) the presets in ``text``; all or nothing."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"The presets file is not JSON ({exc}).") from exc
        items = data.get("presets") if isinstance(data, dict) else data
        if not isinstance(items, list) or not items:
            raise SettingsError("The presets file holds no presets (expected {\"presets\": [...]}).")
        presets = [check_preset(item, f"preset #{i + 1}") for i, item in enumerate(items)]
        names = {p.name.casefold() for p in presets}
        self._write([p for p in self._user() if p.name.casefold() not in names] + presets)
        return presets

    def _write(self, presets: list[Preset]) -> None:
        try:
            write_json_atomic(self.path, {"format": FORMAT, "version": 1, "presets": [asdict(p) for p in presets]})
        except OSError as exc:
            raise SettingsError(f"Could not save the presets to {self.path}: {exc.strerror or exc}") from exc


def apply_preset(store: ConversationStore, conversation_id: int, preset: Preset) -> None:
    """Copy a preset's values into a conversation (its instructions, effort and options)."""
    store.update(conversation_id, system_prompt=preset.instructions, reasoning_effort=preset.reasoning_effort)
    store.set_options(conversation_id, **preset.options())


def presets_path(settings_path: Path) -> Path:
    return Path(settings_path).with_name("presets.json")
