"""Presets: built-in and the user's, import/export as JSON, applied to a conversation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import app.documents  # noqa: F401 - the full schema (the conversation options column)
from app.chat import ChatSession, SamplingSettings
from app.errors import SettingsError
from app.presets import BUILTIN_PRESETS, Preset, PresetStore, apply_preset
from app.storage import ConversationStore, Database


@pytest.fixture
def presets(tmp_path: Path) -> PresetStore:
    return PresetStore(tmp_path / "presets.json")


def test_builtins_then_the_users_own(presets: PresetStore) -> None:
    assert presets.names()[:4] == ["Balanced", "Careful reasoner", "Quick answers", "Code helper"]
    mine = Preset("Terse", instructions="One line.", reasoning_effort="low", temperature=0.2, max_tokens=64)
    presets.save(mine)
    assert presets.get("terse") == mine
    # A built-in can be overridden by name, and comes back when the override is deleted.
    presets.save(replace(BUILTIN_PRESETS[2], max_tokens=99))
    assert presets.get("Quick answers").max_tokens == 99
    presets.delete("Quick answers")
    assert presets.get("Quick answers") == BUILTIN_PRESETS[2]
    with pytest.raises(KeyError, match="no preset named 'nope'"):
        presets.get("nope")


def test_export_import_round_trip(tmp_path: Path, presets: PresetStore) -> None:
    presets.save(Preset("Terse", instructions="One line.", overflow="summarize", tools=False))
    text = presets.export_json(["Terse", "Code helper"])
    assert json.loads(text)["format"] == "hearth-presets"
    other = PresetStore(tmp_path / "elsewhere" / "presets.json")
    got = other.import_json(text)
    assert [p.name for p in got] == ["Code helper", "Terse"]
    assert other.get("Terse") == presets.get("Terse")


@pytest.mark.parametrize("payload,message", [
    ("{not json", "not JSON"),
    ('{"presets": []}', "holds no presets"),
    ('{"presets": [{"name": "X", "reasoning_effort": "max"}]}', "reasoning_effort"),
    ('{"presets": [{"name": "X", "temperature": 9}]}', "between 0 and 5"),
    ('{"presets": [{"name": "X", "colour": "red"}]}', "unknown field"),
    ('{"presets": [{"name": "ok"}, {"name": ""}]}', "'name'"),
])
def test_a_bad_import_says_what_is_wrong_and_changes_nothing(presets: PresetStore, payload: str,
                                                             message: str) -> None:
    before = presets.names()
    with pytest.raises(SettingsError, match=message):
        presets.import_json(payload)
    assert presets.names() == before


def test_applying_a_preset_sets_the_conversation_and_the_session_uses_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    conv = store.create()
    apply_preset(store, conv.id, Preset("Hot", instructions="Be bold.", reasoning_effort="high",
                                        temperature=1.5, max_tokens=77, tools=False))
    conv = store.get(conv.id)
    assert conv.system_prompt == "Be bold." and conv.reasoning_effort == "high"
    assert conv.options == {"temperature": 1.5, "max_tokens": 77, "tools": False, "overflow": "drop",
                            "preset": "Hot"}
    s = ChatSession(store, engine=None, sampling=SamplingSettings(temperature=0.3, top_p=0.9, max_tokens=4096))  # type: ignore[arg-type]
    eff = s.sampling_for(conv)
    assert (eff.temperature, eff.top_p, eff.max_tokens) == (1.5, 0.9, 77)
    # Applying another preset replaces every value, leaving none of the old ones behind.
    apply_preset(store, conv.id, BUILTIN_PRESETS[0])
    assert store.get(conv.id).options == {"tools": True, "overflow": "drop", "preset": "Balanced"}
    with pytest.raises(ValueError, match="overflow"):
        store.set_options(conv.id, overflow="explode")
    db.close()
