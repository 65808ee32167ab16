"""The documents part of the database schema: its migration, registered with app.storage on import."""

from __future__ import annotations

import sqlite3

from app.storage.db import register_migration, run_script

# documents: one row per distinct content (sha256); status 'indexing' while being
# added, 'ready' once complete, 'failed' while being discarded. Rows never 'ready'
# are leftovers of a crash or cancel and are removed by DocumentIndex.recover().
# AUTOINCREMENT: ids are never reused, so in-memory caches keyed by id stay valid.
_SQL = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    n_pages INTEGER NOT NULL DEFAULT 0,
    n_chunks INTEGER NOT NULL DEFAULT 0,
    n_chars INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'indexing' CHECK (status IN ('indexing', 'ready', 'failed')),
    error TEXT,
    owner TEXT,
    created_at REAL NOT NULL,
    touched_at REAL NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    heading TEXT,
    text TEXT NOT NULL
);
CREATE INDEX chunks_document ON chunks(document_id, seq);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, COALESCE(new.heading, ''));
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
        VALUES ('delete', old.id, old.text, COALESCE(old.heading, ''));
END;
CREATE TABLE embeddings (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (chunk_id, model)
) WITHOUT ROWID;
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    added_at REAL NOT NULL,
    UNIQUE (conversation_id, document_id)
);
CREATE INDEX attachments_document ON attachments(document_id);
"""


def migrate_documents(c: sqlite3.Connection) -> None:
    """Schema 1 -> 2: documents, chunks (+ FTS5), embeddings, attachments."""
    run_script(c, _SQL)


register_migration(2, migrate_documents)
