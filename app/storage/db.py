"""The app's SQLite database: connections, WAL, schema version and migrations.

Only app/storage opens connections. One connection per thread (``Database.conn``
gives each thread its own). A database written by a newer Hearth, or one that is
corrupt, raises StorageError and the file is left untouched.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Callable

from app.documents.schema import migrate_documents
from app.errors import StorageError

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]


def run_script(c: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction.

    (``executescript`` would commit first, breaking the migration's atomicity.)
    """
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            c.execute(buf)
            buf = ""
    if buf.strip():
        c.execute(buf)


def _m1_conversations(c: sqlite3.Connection) -> None:
    run_script(
        c,
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT 'New chat',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            model TEXT,
            reasoning_effort TEXT NOT NULL DEFAULT 'medium',
            system_prompt TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX conversations_updated ON conversations(updated_at DESC);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL DEFAULT '',
            thinking TEXT NOT NULL DEFAULT '',
            tool_calls TEXT,
            tool_call_id TEXT,
            name TEXT,
            status TEXT NOT NULL DEFAULT 'complete',
            error TEXT,
            stats TEXT,
            created_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX messages_conv_seq ON messages(conversation_id, seq);
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, thinking, content='messages', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
        END;
        CREATE TRIGGER messages_au AFTER UPDATE OF content, thinking ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content, thinking)
                VALUES ('delete', old.id, old.content, old.thinking);
            INSERT INTO messages_fts(rowid, content, thinking) VALUES (new.id, new.content, new.thinking);
        END;
        CREATE VIRTUAL TABLE conversations_fts USING fts5(
            title, content='conversations', content_rowid='id'
        );
        CREATE TRIGGER conversations_ai AFTER INSERT ON conversations BEGIN
            INSERT INTO conversations_fts(rowid, title) VALUES (new.id, new.title);
        END;
        CREATE TRIGGER conversations_ad AFTER DELETE ON conversations BEGIN
            INSERT INTO conversations_fts(conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
        END;
        CREATE TRIGGER conversations_au AFTER UPDATE OF title ON conversations BEGIN
            INSERT INTO conversations_fts(conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
            INSERT INTO conversations_fts(rowid, title) VALUES (new.id, new.title);
        END;
        """
    )


# Index i holds the migration from schema version i to i + 1. Append only.
MIGRATIONS: list[Migration] = [_m1_conversations, migrate_documents]


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._check_and_migrate()

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    def _connect(self) -> sqlite3.Connection:
        try:
            c = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=True)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA foreign_keys = ON")
            c.execute("PRAGMA busy_timeout = 10000")
            c.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StorageError(self._corrupt_message(exc)) from exc
        return c

    def _corrupt_message(self, exc: BaseException) -> str:
        return (
            f"The history database {self.path} cannot be read ({exc}). It was left untouched. "
            "Move it elsewhere to start a fresh history, or restore a backup."
        )

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._all_lock:
                self._all.append(c)
        return c

    def _check_and_migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        c = self.conn
        try:
            if not fresh:
                # Read-only checks first: a foreign or damaged file is never written to.
                ok = c.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise StorageError(self._corrupt_message(RuntimeError(ok)))
            has_table = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            version = 0
            if has_table:
                row = c.execute("SELECT version FROM schema_version").fetchone()
                version = int(row[0]) if row else 0
            elif not fresh and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StorageError(
                    f"{self.path} is not a Hearth history database. It was left untouched; "
                    "choose another data folder or move the file away."
                )
            if version > len(MIGRATIONS):
                raise StorageError(
                    f"The history database {self.path} was written by a newer version of Hearth "
                    f"(schema {version}; this version knows up to {len(MIGRATIONS)}). It was left "
                    "untouched. Update Hearth to open it."
                )
            if version < len(MIGRATIONS):
                c.execute("PRAGMA journal_mode = WAL")
                self._migrate(c, version)
            else:
                c.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StorageError(self._corrupt_message(exc)) from exc
        except StorageError:
            self.close()
            raise

    def _migrate(self, c: sqlite3.Connection, version: int) -> None:
        for target in range(version, len(MIGRATIONS)):
            log.info("migrating database %s to schema %d", self.path, target + 1)
            c.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[target](c)
                c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                c.execute("DELETE FROM schema_version")
                c.execute("INSERT INTO schema_version(version) VALUES (?)", (target + 1,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except sqlite3.ProgrammingError:
                pass  # owned by another thread that already exited
        self._local = threading.local()
