"""The app's SQLite database: connections, WAL, schema version and migrations.

Only app/storage opens connections. One connection per thread (``Database.conn``
gives each thread its own). A database written by a newer Hearth, or one that is
corrupt, raises StorageError and the file is left untouched; so does one that
cannot be written (StorageReadOnly), before anything else has started.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Callable

from app.errors import SearchIndexDamaged, StorageError, StorageReadOnly

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]

# SQLite primary result codes (sqlite3 names them only from Python 3.11).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_CORRUPT_VTAB = _CORRUPT | (1 << 8)


def check_writable(path: Path) -> None:
    """Raise StorageReadOnly unless the database file and its folder can be written.

    SQLite opens a read-only file without complaint and fails only at the first
    write (after a model has loaded, in the middle of a turn). The folder must be
    writable too: WAL mode keeps its -wal and -shm files next to the database.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".hearth-write-check-"):
            pass
    except OSError as exc:
        raise StorageReadOnly(
            f"Hearth cannot write to its data folder {folder} ({exc.strerror or exc}), so it cannot "
            "keep your conversation history. Nothing was changed. Make the folder writable (check its "
            "permissions, and that its disk is not read-only or full), or start Hearth with another "
            "data folder: hearth --data-dir FOLDER."
        ) from exc
    for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.close(os.open(f, os.O_RDWR))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageReadOnly(
                f"The history database {f} is read-only ({exc.strerror or exc}), so Hearth could not "
                "save your conversations. It was left untouched. Make the file writable again (restore "
                "its write permission, or copy it off read-only media), or start Hearth with another "
                "data folder: hearth --data-dir FOLDER."
            ) from exc


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
# Storage owns version 1 and knows nothing of the other parts of the app that keep
# tables in this database: each registers its own migrations when it is imported
# (app.documents: version 2). Open the database through app.context.AppContext, which
# imports them all first: a process that has not would take the file for a newer one.
MIGRATIONS: list[Migration] = [_m1_conversations]


_PENDING: dict[int, Migration] = {}  # registered before the version under them


def register_migration(version: int, migration: Migration) -> None:
    """Add the migration that brings the schema to ``version`` (idempotent).

    Parts may be imported in any order: a version registered before the one under it
    waits, and joins MIGRATIONS once the gap is filled (a database opened before then
    is read as a newer one and left untouched).
    """
    have = MIGRATIONS[version - 1] if version <= len(MIGRATIONS) else _PENDING.get(version)
    if have is not None:
        if (have.__module__, have.__qualname__) == (migration.__module__, migration.__qualname__):
            return  # the registering module was imported again
        raise RuntimeError(f"schema version {version} is already made by {have.__module__}.{have.__qualname__}")
    _PENDING[version] = migration
    while len(MIGRATIONS) + 1 in _PENDING:
        MIGRATIONS.append(_PENDING.pop(len(MIGRATIONS) + 1))


def _version(c: sqlite3.Connection) -> int:
    if not c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone():
        return 0
    row = c.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


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

    def storage_error(self, exc: sqlite3.Error) -> StorageError:
        """The HearthError to raise for a SQLite error met after start-up."""
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
        primary = code & 0xFF if code is not None else None
        text = str(exc)
        if primary == _READONLY or "readonly database" in text:
            return StorageReadOnly(
                f"Hearth could not save to the history database {self.path}: it has become read-only "
                f"({text}). Make the file and its folder writable again, then restart Hearth."
            )
        if primary in (_CORRUPT, _NOTADB) or "malformed" in text or "vtable constructor failed" in text:
            if code == _CORRUPT_VTAB or self._tables_intact():
                return SearchIndexDamaged(
                    f"The search index in the history database {self.path} is damaged ({text}). Your "
                    "conversations are intact; rebuild the search index to repair it (nothing is lost)."
                )
            return StorageError(self._corrupt_message(exc))
        if primary in (_BUSY, _LOCKED) or "database is locked" in text:
            return StorageError(
                f"The history database {self.path} is busy: another program (a second Hearth?) kept it "
                "locked for more than 10 seconds. Close that program and try again."
            )
        if primary == _FULL or "disk is full" in text:
            return StorageError(
                f"The disk holding the history database {self.path} is full, so this was not saved. "
                "Free some space and try again."
            )
        if primary in (_IOERR, _CANTOPEN):
            return StorageError(
                f"Hearth could not read or write the history database {self.path} ({text}). Check that "
                "the disk is still connected and working, then restart Hearth."
            )
        return StorageError(
            f"The history database {self.path} reported an error ({text}); this step was not saved. "
            "Try again; if it keeps happening, restart Hearth."
        )

    def _tables_intact(self) -> bool:
        """Whether the tables themselves pass quick_check (then only an index is damaged)."""
        try:
            c = self._connect()
            try:
                return bool(c.execute("PRAGMA quick_check").fetchone()[0] == "ok")
            finally:
                c.close()
        except (sqlite3.Error, StorageError):
            return False

    def rebuild_search_index(self) -> None:
        """Rebuild every full-text index from the tables it indexes (repairs SearchIndexDamaged)."""
        c = self._connect()  # a fresh connection: no FTS5 table is open in it with stale state
        try:
            tables = [r[0] for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
                " AND lower(sql) LIKE '%using fts5%'")]
            names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            # FTS5's empty index, from a blank table, for indexes too damaged to be opened at all
            # ('rebuild' needs the damaged table's own structure record to open it).
            c.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.hearth_blank_fts USING fts5(x, content='')")
            c.execute("BEGIN IMMEDIATE")
            try:
                for t in tables:
                    if f"{t}_content" in names:
                        log.warning("%s keeps its own text; it is not rebuilt", t)
                        continue
                    log.info("rebuilding the search index %s in %s", t, self.path)
                    for shadow in ("data", "idx", "docsize", "config"):
                        if f"{t}_{shadow}" in names:
                            c.execute(f'DELETE FROM "{t}_{shadow}"')
                    c.execute(f'INSERT INTO "{t}_data" SELECT * FROM temp.hearth_blank_fts_data')
                    c.execute(f'INSERT INTO "{t}_config" SELECT * FROM temp.hearth_blank_fts_config')
                    c.execute(f'INSERT INTO "{t}"("{t}") VALUES (\'rebuild\')')
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self.storage_error(exc) from exc
        finally:
            c.close()

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
        check_writable(self.path)
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
            raise self.storage_error(exc) from exc
        except StorageError:
            self.close()
            raise

    def upgrade(self) -> None:
        """Apply migrations registered since this database was opened (by a part of the
        app imported later, e.g. app.documents); cheap when there are none."""
        c = self.conn
        try:
            if _version(c) < len(MIGRATIONS):
                self._migrate(c, _version(c))
        except sqlite3.Error as exc:
            raise self.storage_error(exc) from exc

    def _migrate(self, c: sqlite3.Connection, version: int) -> None:
        for target in range(version, len(MIGRATIONS)):
            c.execute("BEGIN IMMEDIATE")
            if _version(c) > target:  # another process or connection got there first
                c.execute("COMMIT")
                continue
            log.info("migrating database %s to schema %d", self.path, target + 1)
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
