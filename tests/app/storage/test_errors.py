"""What a person sees when the history cannot be written or its search index is damaged."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.chat import ChatSession
from app.cli import main as cli_main
from app.context import AppContext
from app.errors import HearthError, SearchIndexDamaged, StorageError, StorageReadOnly
from app.storage import ConversationStore, Database


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or folder unwritable for this process, even when it runs as root."""
    if sys.platform == "win32":
        pytest.skip("read-only folders cannot be made with chmod on Windows")
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    # root ignores permission bits; the immutable attribute stops it too.
    r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make {path} read-only as root here: {r.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _history(path: Path) -> bytes:
    db = Database(path)
    store = ConversationStore(db)
    conv = store.create("cats")
    store.add_message(conv.id, "user", "tell me about cats")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.read_bytes()


# ---- read-only ---------------------------------------------------------------


def test_read_only_database_file_is_refused_at_open_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    before = _history(path)
    with read_only(path):
        with pytest.raises(StorageReadOnly, match="read-only") as err:
            Database(path)
    assert "writable" in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == before


def test_read_only_data_folder_says_it_cannot_be_written(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "h.db"
    before = _history(path)
    with read_only(folder):
        with pytest.raises(StorageReadOnly) as err:
            Database(path)
        with pytest.raises(StorageReadOnly):
            Database(folder / "new.db")  # no history yet
    msg = str(err.value)
    assert "cannot write" in msg and "--data-dir" in msg
    assert "restore a backup" not in msg and "cannot be read" not in msg
    assert path.read_bytes() == before


def test_app_context_refuses_a_read_only_history_at_start(tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path)
    _history(ctx.paths.db_path)
    with read_only(ctx.paths.db_path):
        with pytest.raises(StorageReadOnly):
            AppContext.create(tmp_path)


def test_cli_chat_says_so_before_loading_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = AppContext.create(tmp_path)
    _history(ctx.paths.db_path)
    with read_only(ctx.paths.db_path):
        # The model does not exist: reaching the load would report that instead (exit 3).
        code = cli_main(["--data-dir", str(tmp_path), "chat", "--model", str(tmp_path / "m.gguf"), "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert "read-only" in err and "Traceback" not in err and "m.gguf" not in err


def test_write_refused_later_becomes_storage_read_only(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    exc = db.storage_error(sqlite3.OperationalError("attempt to write a readonly database"))
    assert isinstance(exc, StorageReadOnly) and "writable" in str(exc)
    db.close()


# ---- a damaged search index --------------------------------------------------


def _damage(path: Path, how: str) -> None:
    c = sqlite3.connect(path, isolation_level=None)
    if how == "structure":  # the index cannot even be opened: every message write fails
        c.execute("UPDATE messages_fts_data SET block=x'ffffffffffff' WHERE id=10")
    else:  # the index's pages are garbage: searching fails
        c.execute("UPDATE messages_fts_data SET block=x'00ff00ff00ff00ff00ff' WHERE id>10")
    assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # the tables themselves are fine
    c.close()


@pytest.mark.parametrize("how", ["structure", "pages"])
def test_damaged_search_index_is_a_clear_error_and_can_be_rebuilt(tmp_path: Path, how: str) -> None:
    path = tmp_path / "h.db"
    _history(path)
    _damage(path, how)
    db = Database(path)  # opens: the history is intact
    store = ConversationStore(db)
    with pytest.raises(SearchIndexDamaged, match="rebuild the search index") as err:
        store.search("cats")
    assert isinstance(err.value, HearthError)
    assert not isinstance(err.value.__cause__, type(None))  # the SQLite error stays in the log's traceback

    store.rebuild_search_index()
    hits = store.search("cats")
    assert [h.title for h in hits] == ["cats"]
    conv = store.create("dogs")
    store.add_message(conv.id, "user", "dogs bark")
    assert [h.title for h in store.search("bark")] == ["dogs"]
    ok = db.conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')")
    assert ok is not None
    db.close()


def test_failed_first_turn_leaves_no_empty_conversation(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    _history(path)
    _damage(path, "structure")
    db = Database(path)
    store = ConversationStore(db)
    before = store.count()
    conv = store.create()  # what the window and the CLI do before the first message
    engine: Any = None  # never reached: the message cannot be saved
    session = ChatSession(store, engine)
    with pytest.raises(SearchIndexDamaged):
        list(session.send(conv.id, "hello"))
    assert store.count() == before
    with pytest.raises(KeyError):
        store.get(conv.id)
    db.close()


def test_every_store_error_is_a_storage_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    conv = store.create()
    db.conn.execute("DROP TABLE messages_fts")  # drops its triggers' target: every message write fails
    with pytest.raises(StorageError):
        store.add_message(conv.id, "user", "x")
    db.close()


def test_discard_if_empty_keeps_a_conversation_with_messages(tmp_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    conv = store.create()
    store.add_message(conv.id, "user", "keep me")
    assert store.discard_if_empty(conv.id) is False
    assert store.message_count(conv.id) == 1
    empty = store.create()
    assert store.discard_if_empty(empty.id) is True
    assert store.count() == 1
    db.close()
