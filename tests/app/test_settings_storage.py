"""Settings and the history database: versions, migrations, bad files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import app.documents  # noqa: F401 - registers the documents migration: every schema version is tested
from app.errors import StorageError
from app.paths import resolve_paths
from app.settings import SCHEMA_VERSION, Settings, load_settings, save_settings
from app.storage import ConversationStore, Database
from app.storage import db as dbmod


def test_data_dir_holds_everything(tmp_path: Path) -> None:
    p = resolve_paths(tmp_path / "d")
    for sub in (p.config_dir, p.cache_dir, p.log_dir, p.db_path, p.default_models_dir):
        assert str(sub).startswith(str(tmp_path / "d"))


def test_settings_roundtrip_and_unknown_keys_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    s = Settings(temperature=0.5, context_size=8192)
    s.extra["from_the_future"] = 1
    save_settings(s, path)
    again = load_settings(path)
    assert again.temperature == 0.5 and again.context_size == 8192
    assert json.loads(path.read_text())["from_the_future"] == 1


def test_settings_migrate_from_v1(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "n_ctx": 16384}))
    s = load_settings(path)
    assert s.context_size == 16384 and s.schema_version == SCHEMA_VERSION


def test_broken_settings_are_kept_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    s = load_settings(path)
    assert s == Settings()
    assert (tmp_path / "settings.broken.json").read_text() == "{not json"


def test_invalid_settings_rejected(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="Temperature"):
        save_settings(Settings(temperature=9), tmp_path / "s.json")


def test_history_crud_search_export(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    conv = store.create()
    store.add_message(conv.id, "user", "What does clause 4 of the lease say?")
    reply = store.add_message(conv.id, "assistant", "", status="streaming")
    store.update_message(reply.id, content="Clause 4 covers **repairs**.", thinking="look at clause 4",
                         status="complete")
    store.rename(conv.id, "Lease questions")
    assert [h.conversation_id for h in store.search("repairs")] == [conv.id]
    assert [h.conversation_id for h in store.search("lease quest")] == [conv.id]
    assert store.search("nonexistentword") == []
    md = store.export_markdown(conv.id)
    assert "# Lease questions" in md and "Clause 4 covers **repairs**." in md and "look at clause" not in md
    assert "look at clause 4" in store.export_markdown(conv.id, include_thinking=True)
    data = json.loads(store.export_json(conv.id))
    assert data["messages"][1]["thinking"] == "look at clause 4"
    # delete and undo
    msgs = store.messages(conv.id)
    store.delete(conv.id)
    assert store.list() == [] and store.search("repairs") == []
    store.restore(store_conv := conv, msgs)
    assert store.messages(store_conv.id)[1].content == "Clause 4 covers **repairs**."
    assert store.search("repairs")[0].conversation_id == conv.id
    db.close()


def test_streaming_reply_marked_interrupted_after_crash(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    conv = store.create()
    m = store.add_message(conv.id, "assistant", "partial answ", status="streaming")
    db.close()
    db2 = Database(tmp_path / "h.db")
    store2 = ConversationStore(db2)
    assert store2.mark_interrupted() == 1
    again = store2.get_message(m.id)
    assert again.status == "interrupted" and again.content == "partial answ"
    db2.close()


def test_corrupt_database_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    junk = b"SQLite format 3\x00" + b"\x13" * 4000
    path.write_bytes(junk)
    with pytest.raises(StorageError, match="left untouched"):
        Database(path)
    assert path.read_bytes() == junk


def test_foreign_database_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE other (x)")
    c.commit()
    c.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not a Hearth history database"):
        Database(path)
    assert path.read_bytes() == before


def test_newer_schema_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    Database(path).close()
    c = sqlite3.connect(path)
    c.execute("UPDATE schema_version SET version = 999")
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer version of Hearth"):
        Database(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("start", range(1, len(dbmod.MIGRATIONS)))
def test_migrates_from_every_older_schema(tmp_path: Path, start: int, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.db"
    full = list(dbmod.MIGRATIONS)
    monkeypatch.setattr(dbmod, "MIGRATIONS", full[:start])
    db = Database(path)
    store = ConversationStore(db)
    conv = store.create("old chat")
    store.add_message(conv.id, "user", "kept across upgrades")
    db.close()
    monkeypatch.setattr(dbmod, "MIGRATIONS", full)
    db = Database(path)
    store = ConversationStore(db)
    assert store.messages(conv.id)[0].content == "kept across upgrades"
    assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(full)
    db.close()


def test_fresh_database_is_wal_and_versioned(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(dbmod.MIGRATIONS)
    db.close()


@pytest.mark.parametrize("field,value,message", [
    ("gpu_layers_override", -2, "GPU layers"), ("cpu_moe_override", -1, "CPU expert"),
    ("state_cache_bytes", -1, "cache size"), ("saved_state_max_bytes", 10, "at least 1 MB"),
    ("hf_endpoint", "mirror.example", "Mirror endpoint"), ("proxy", "host:3128", "Proxy"),
])
def test_hand_edited_bad_values_are_refused(tmp_path: Path, field: str, value: object, message: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, field: value, "max_tokens": 777}))
    loaded = load_settings(path)
    assert getattr(loaded, field) == getattr(Settings(), field)  # the bad value is reset…
    assert loaded.max_tokens == 777  # …and the good ones are kept
    assert (tmp_path / "settings.broken.json").exists()
    with pytest.raises(Exception, match=message):
        save_settings(Settings(**{field: value}), tmp_path / "other.json")
