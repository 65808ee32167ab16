"""Documents in the app's SQLite database: ingestion, attachments, search, whole text.

Ingestion is a generator of progress events, run off the GUI thread. It reads
and extracts first (bad input fails before anything is written), then stores
chunks in short transactions (a few ms each, so other threads are never held
up), and attaches the document in the same transaction that marks it ready.
A crash leaves a row marked 'indexing' whose owner is gone; ``recover()`` (also
run by every ingestion) removes it, so the file can simply be added again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from app.documents.chunking import Chunk, chunk_pages, stitch
from app.documents.errors import unreadable
from app.documents.extract import check_file, check_has_text, expand_paths, open_document
from app.documents.models import (
    Attachment, Embedding, Extracting, IngestCancelled, IngestDone, IngestFailed, IngestProgress, Indexing,
    Passage, Reading, citation_label,
)
from app.documents.pages import Page
from app.documents.retrieval import (
    HYBRID_CANDIDATES, VectorCache, bm25_search, fuse, passages_by_id, to_blob, vector_search,
)
from app.errors import Cancelled, DocumentError, HearthError
from app.storage.db import Database

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[str]], list[list[float]]]
CancelToken = Callable[[], bool] | threading.Event | None

BATCH_CHUNKS = 16  # chunks per write transaction: a few milliseconds each (see _WritePacer)
EMBED_BATCH = 16
PURGE_BATCH = 64
STALE_S = 120.0  # an 'indexing' row untouched this long belongs to a dead ingestion
WAIT_POLL_S = 0.1
# Conservative: gpt-oss averages ~4 characters per token on English prose and
# fewer on code and numbers; overestimating only means retrieval is used sooner.
CHARS_PER_TOKEN = 3.5

_HOST = socket.gethostname()
_OWNER = f"{_HOST}:{os.getpid()}"
# (database, sha256) of documents this process is writing right now.
_active: Counter[tuple[str, str]] = Counter()
_active_lock = threading.Lock()


def estimate_tokens(text_or_chars: str | int) -> int:
    n = text_or_chars if isinstance(text_or_chars, int) else len(text_or_chars)
    return math.ceil(n / CHARS_PER_TOKEN)


class _WritePacer:
    """Leaves regular gaps between write transactions.

    SQLite's busy handler polls (at 0, 1, 3, 8, 18, 33 ms ...) rather than
    queueing, so a writer that re-locks at once starves every other writer (the
    chat saving a message) until the whole document is in. Writing for at most
    WORK_S, then pausing GAP_S (longer than the handler's early poll spacing),
    lets any waiting writer in within about 35 ms.
    """

    WORK_S = 0.010
    GAP_S = 0.015

    CHECKPOINT_EVERY = 64  # transactions

    def __init__(self, db: Database) -> None:
        self._db = db  # its connection is looked up per call: a generator may move between threads
        self._worked = 0.0
        self._txns = 0

    def wrote(self, held_s: float) -> None:
        self._worked += held_s
        self._txns += 1
        if self._txns % self.CHECKPOINT_EVERY == 0:
            # Checkpoint here, off the GUI thread: otherwise whichever connection
            # commits past SQLite's 1000-page WAL threshold pays for it.
            t0 = time.monotonic()
            self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._worked += time.monotonic() - t0
        if self._worked >= self.WORK_S:
            self._worked = 0.0
            time.sleep(self.GAP_S)


def _cancel_fn(cancel: CancelToken) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    return cancel


class DocumentIndex:
    """Documents attached to conversations. Safe to share between threads (one connection each)."""

    def __init__(self, db: Database, *, embed_fn: EmbedFn | None = None, embed_model: str | None = None) -> None:
        self.db = db
        db.upgrade()  # the documents tables, if this database was opened before app.documents was imported
        # embed_fn: texts -> vectors (e.g. EngineClient.embed with an embedding GGUF
        # loaded); embed_model names the model so vectors of different models never mix.
        self.embed_fn = embed_fn
        self.embed_model = (embed_model or "default") if embed_fn is not None else None
        self._vectors = VectorCache()
        self._db_key = os.path.realpath(db.path)

    @property
    def _c(self) -> sqlite3.Connection:
        return self.db.conn

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        c = self._c
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # ---- ingestion -------------------------------------------------------

    def ingest(self, path: str | os.PathLike[str], conversation_id: int, *, password: str | None = None,
               cancel: CancelToken = None) -> Iterator[IngestProgress]:
        """Add one file to a conversation, yielding progress; the last event is
        IngestDone, IngestFailed (``error`` says why; PasswordRequired: ask and call
        again with ``password``) or IngestCancelled. ``cancel`` is checked between
        pages and batches (a callable returning True, or a threading.Event).
        """
        p = Path(path)
        spath, name = str(p), p.name
        cancelled = _cancel_fn(cancel)
        claimed: tuple[int, str] | None = None  # (document id, sha256) while this call owns a row
        try:
            _kind, size = check_file(p)
            sha = yield from self._fingerprint(p, size, cancelled)
            self.recover()
            extracted: tuple[str, list[Page], list[Chunk]] | None = None
            while True:
                existing = yield from self._attach_existing(sha, conversation_id, name, spath, size, cancelled)
                if existing is not None:
                    embedded, note = yield from self._embed(existing.document_id, spath, name, cancelled,
                                                            stop_quietly=True)
                    yield IngestDone(spath, name, existing, reused=True, embedded=embedded, note=note)
                    return
                if extracted is None:
                    kind, pages = yield from self._extract(p, password, cancelled)
                    extracted = (kind, pages, list(chunk_pages(pages)))
                kind, pages, chunks = extracted
                doc_id = self._claim(sha, name, str(p.absolute()), kind, size, len(pages),
                                     sum(len(pg.text) for pg in pages))
                if doc_id is not None:
                    claimed = (doc_id, sha)
                    break
                # The same content was claimed by another ingestion meanwhile: wait and attach.
            yield from self._store_chunks(doc_id, chunks, spath, name, cancelled)
            embedded, note = yield from self._embed(doc_id, spath, name, cancelled)
            attachment = self._finish(doc_id, conversation_id, name, len(chunks))
            self._release(claimed)
            claimed = None
            yield IngestDone(spath, name, attachment, reused=False, embedded=embedded, note=note)
        except Cancelled:
            self._abandon(claimed, "cancelled")
            yield IngestCancelled(spath, name)
        except DocumentError as exc:
            self._abandon(claimed, str(exc))
            yield IngestFailed(spath, name, exc)
        except sqlite3.Error as exc:
            log.exception("storing %s failed", spath)
            self._abandon(claimed, str(exc))
            yield IngestFailed(spath, name, DocumentError(
                f"{name} could not be saved in Hearth's database ({exc}). Check that the disk is not full, "
                "then add it again."))
        except BaseException:
            # A bug or the consumer closing the generator: leave nothing half-done behind.
            self._abandon(claimed, "interrupted")
            raise

    def ingest_many(self, paths: Iterable[str | os.PathLike[str]], conversation_id: int, *,
                    cancel: CancelToken = None) -> Iterator[IngestProgress]:
        """Files and folders (walked for supported files) one after another; a bad
        file yields its IngestFailed and the rest go on."""
        files, _skipped = expand_paths(paths)
        cancelled = _cancel_fn(cancel)
        for f in files:
            if cancelled():
                yield IngestCancelled(str(f), f.name)
                continue
            yield from self.ingest(f, conversation_id, cancel=cancel)

    def _fingerprint(self, p: Path, size: int,
                     cancelled: Callable[[], bool]) -> Generator[IngestProgress, None, str]:
        h = hashlib.sha256()
        done = 0
        last = 0.0
        try:
            with open(p, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    done += len(block)
                    if cancelled():
                        raise Cancelled(f"Adding {p.name} was cancelled.")
                    now = time.monotonic()
                    if now - last > 0.1:
                        last = now
                        yield Reading(str(p), p.name, done, size)
        except OSError as exc:
            raise unreadable(p, exc) from exc
        yield Reading(str(p), p.name, done, size)
        return h.hexdigest()

    def _extract(self, p: Path, password: str | None,
                 cancelled: Callable[[], bool]) -> Generator[IngestProgress, None, tuple[str, list[Page]]]:
        pages: list[Page] = []
        with open_document(p, password) as ex:
            yield Extracting(str(p), p.name, 0, ex.n_pages)
            for page in ex.iter_pages():
                if cancelled():
                    raise Cancelled(f"Adding {p.name} was cancelled.")
                pages.append(page)
                yield Extracting(str(p), p.name, len(pages), ex.n_pages)
        check_has_text(p.name, ex.kind, pages, str(p))
        return ex.kind, pages

    def _attach_existing(self, sha: str, conversation_id: int, name: str, spath: str, size: int,
                         cancelled: Callable[[], bool]) -> Generator[IngestProgress, None, Attachment | None]:
        """Attach an already indexed copy of this content; waits while another
        ingestion of it is under way. Returns None when there is none."""
        waited = 0.0
        while True:
            row = self._c.execute("SELECT * FROM documents WHERE sha256 = ?", (sha,)).fetchone()
            if row is None:
                return None
            if row["status"] == "ready":
                att = self._attach(row["id"], conversation_id, name)
                if att is not None:
                    return att
                continue  # it was being removed as we looked
            if self._is_stale(row):
                self._purge(row["id"], row["sha256"])
                continue
            if cancelled():
                raise Cancelled(f"Adding {name} was cancelled.")
            if waited == 0.0 or waited >= 1.0:
                waited = 0.0
                yield Reading(spath, name, size, size)
            time.sleep(WAIT_POLL_S)
            waited += WAIT_POLL_S

    def _attach(self, document_id: int, conversation_id: int, name: str) -> Attachment | None:
        with self._txn() as c:
            ready = c.execute("SELECT 1 FROM documents WHERE id = ? AND status = 'ready'", (document_id,)).fetchone()
            if ready is None:
                return None
            self._check_conversation(c, conversation_id, name)
            c.execute(
                "INSERT OR IGNORE INTO attachments(conversation_id, document_id, name, added_at) VALUES (?,?,?,?)",
                (conversation_id, document_id, name, time.time()),
            )
        return self.attachment(conversation_id, document_id)

    @staticmethod
    def _check_conversation(c: sqlite3.Connection, conversation_id: int, name: str) -> None:
        if c.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise DocumentError(f"{name} was not added: its conversation was deleted.")

    def _claim(self, sha: str, name: str, spath: str, kind: str, size: int, n_pages: int,
               n_chars: int) -> int | None:
        key = (self._db_key, sha)
        # Marked active before the row exists, so no other thread ever sees it ownerless.
        with _active_lock:
            _active[key] += 1
        now = time.time()
        try:
            with self._txn() as c:
                cur = c.execute(
                    "INSERT INTO documents(sha256, name, path, kind, size, n_pages, n_chars, status, owner,"
                    " created_at, touched_at) VALUES (?,?,?,?,?,?,?,'indexing',?,?,?)",
                    (sha, name, spath, kind, size, n_pages, n_chars, _OWNER, now, now),
                )
        except sqlite3.IntegrityError:
            self._release((0, sha))
            return None
        except BaseException:
            self._release((0, sha))
            raise
        return int(cur.lastrowid or 0)

    def _release(self, claimed: tuple[int, str] | None) -> None:
        if claimed is None:
            return
        key = (self._db_key, claimed[1])
        with _active_lock:
            _active[key] -= 1
            if _active[key] <= 0:
                del _active[key]

    def _store_chunks(self, doc_id: int, chunks: Sequence[Chunk], spath: str, name: str,
                      cancelled: Callable[[], bool]) -> Generator[IngestProgress, None, None]:
        n = len(chunks)
        pacer = _WritePacer(self.db)
        for i in range(0, n, BATCH_CHUNKS):
            if cancelled():
                raise Cancelled(f"Adding {name} was cancelled.")
            batch = chunks[i: i + BATCH_CHUNKS]
            t0 = time.monotonic()
            with self._txn() as c:
                c.executemany(
                    "INSERT INTO chunks(document_id, seq, page, char_start, char_end, heading, text)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [(doc_id, i + j, ch.page, ch.start, ch.end, ch.heading, ch.text) for j, ch in enumerate(batch)],
                )
                c.execute("UPDATE documents SET touched_at = ? WHERE id = ?", (time.time(), doc_id))
            pacer.wrote(time.monotonic() - t0)
            yield Indexing(spath, name, min(n, i + len(batch)), n)

    def _embed(self, doc_id: int, spath: str, name: str, cancelled: Callable[[], bool], *,
               stop_quietly: bool = False) -> Generator[IngestProgress, None, tuple[bool, str]]:
        """Embeddings for the document's chunks that lack them: (complete?, note for the user)."""
        if self.embed_fn is None or self.embed_model is None:
            return False, ""
        rows = self._c.execute(
            "SELECT c.id, c.text FROM chunks c WHERE c.document_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model = ?) ORDER BY c.seq",
            (doc_id, self.embed_model),
        ).fetchall()
        n = len(rows)
        pacer = _WritePacer(self.db)
        for i in range(0, n, EMBED_BATCH):
            if cancelled():
                if stop_quietly:
                    return False, "Embedding was cancelled; the document is searched by keywords only."
                raise Cancelled(f"Adding {name} was cancelled.")
            batch = rows[i: i + EMBED_BATCH]
            try:
                vectors = self.embed_fn([r[1] for r in batch])
            except HearthError as exc:
                log.warning("no embeddings for %s: %s", spath, exc)
                return False, f"Embeddings are not available ({exc}); {name} is searched by keywords only."
            if len(vectors) != len(batch):
                log.warning("embedding model returned %d vectors for %d texts", len(vectors), len(batch))
                return False, f"The embedding model gave unusable output; {name} is searched by keywords only."
            t0 = time.monotonic()
            with self._txn() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO embeddings(chunk_id, model, vector) VALUES (?,?,?)",
                    [(r[0], self.embed_model, to_blob(v)) for r, v in zip(batch, vectors)],
                )
                c.execute("UPDATE documents SET touched_at = ? WHERE id = ?", (time.time(), doc_id))
            pacer.wrote(time.monotonic() - t0)
            yield Embedding(spath, name, min(n, i + len(batch)), n)
        return True, ""

    def _finish(self, doc_id: int, conversation_id: int, name: str, n_chunks: int) -> Attachment:
        with self._txn() as c:
            self._check_conversation(c, conversation_id, name)
            c.execute(
                "UPDATE documents SET status = 'ready', n_chunks = ?, owner = NULL, error = NULL, touched_at = ?"
                " WHERE id = ?", (n_chunks, time.time(), doc_id),
            )
            c.execute(
                "INSERT INTO attachments(conversation_id, document_id, name, added_at) VALUES (?,?,?,?)",
                (conversation_id, doc_id, name, time.time()),
            )
        att = self.attachment(conversation_id, doc_id)
        assert att is not None
        return att

    def _abandon(self, claimed: tuple[int, str] | None, reason: str) -> None:
        if claimed is None:
            return
        try:
            self._purge(claimed[0], claimed[1], reason)
        except sqlite3.Error as exc:
            # The row stays marked and recover() finishes the job later.
            log.warning("could not remove the partial document %d yet: %s", claimed[0], exc)
        finally:
            self._release(claimed)

    # ---- recovery and removal --------------------------------------------

    def _is_stale(self, row: Any) -> bool:
        host, _, pid_s = (row["owner"] or "").rpartition(":")
        if host == _HOST and pid_s.isdigit():
            pid = int(pid_s)
            if pid == os.getpid():
                with _active_lock:
                    return (self._db_key, row["sha256"]) not in _active
            if not psutil.pid_exists(pid):
                return True
        # Another machine, or a live process with the same pid: only time tells.
        return time.time() - float(row["touched_at"]) > STALE_S

    def recover(self) -> int:
        """Remove what crashed or cancelled ingestions left, and documents no
        conversation uses any more. Returns how many documents were removed."""
        c = self._c
        rows = c.execute(
            "SELECT * FROM documents d WHERE d.status != 'ready'"
            " OR NOT EXISTS (SELECT 1 FROM attachments a WHERE a.document_id = d.id)"
        ).fetchall()
        removed = 0
        for row in rows:
            if row["status"] == "ready":
                if self._mark_orphan(row["id"]):
                    self._purge(row["id"], row["sha256"])
                    removed += 1
            elif self._is_stale(row):
                log.info("removing %s left half-added (%s)", row["name"], row["status"])
                self._purge(row["id"], row["sha256"])
                removed += 1
        return removed

    def _mark_orphan(self, document_id: int) -> bool:
        """Atomically take a ready document no conversation uses out of service."""
        with self._txn() as c:
            cur = c.execute(
                "UPDATE documents SET status = 'failed', error = 'not attached', owner = ?, touched_at = ?"
                " WHERE id = ? AND status = 'ready'"
                " AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.document_id = documents.id)",
                (_OWNER, time.time(), document_id),
            )
        return cur.rowcount > 0

    def _purge(self, document_id: int, sha: str, reason: str = "removed") -> None:
        """Delete a document in short transactions (its chunks can number tens of thousands)."""
        key = (self._db_key, sha)
        with _active_lock:
            _active[key] += 1
        try:
            c = self._c
            c.execute("UPDATE documents SET status = 'failed', error = ?, owner = ?, touched_at = ? WHERE id = ?",
                      (reason, _OWNER, time.time(), document_id))
            pacer = _WritePacer(self.db)
            while True:
                t0 = time.monotonic()
                with self._txn() as c:
                    cur = c.execute(
                        "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE document_id = ? LIMIT ?)",
                        (document_id, PURGE_BATCH),
                    )
                    c.execute("UPDATE documents SET touched_at = ? WHERE id = ?", (time.time(), document_id))
                pacer.wrote(time.monotonic() - t0)
                if cur.rowcount < PURGE_BATCH:
                    break
            c.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        finally:
            with _active_lock:
                _active[key] -= 1
                if _active[key] <= 0:
                    del _active[key]
        self._vectors.forget(document_id)

    def remove_attachment(self, conversation_id: int, document_id: int) -> None:
        """Detach a document; once no conversation uses it, its index is deleted too
        (in short transactions: call off the GUI thread for big documents)."""
        self._c.execute("DELETE FROM attachments WHERE conversation_id = ? AND document_id = ?",
                        (conversation_id, document_id))
        row = self._c.execute("SELECT sha256 FROM documents WHERE id = ?", (document_id,)).fetchone()
        if row is not None and self._mark_orphan(document_id):
            self._purge(document_id, row[0])

    # ---- reading ---------------------------------------------------------

    _ATT_SQL = (
        "SELECT a.id, a.conversation_id, a.document_id, a.name, a.added_at, d.path, d.kind, d.size, d.n_pages,"
        " d.n_chunks, d.n_chars, d.sha256 FROM attachments a JOIN documents d ON d.id = a.document_id"
    )

    def attachments(self, conversation_id: int) -> list[Attachment]:
        """The conversation's documents, in the order they were added."""
        rows = self._c.execute(self._ATT_SQL + " WHERE a.conversation_id = ? ORDER BY a.id",
                               (conversation_id,)).fetchall()
        return [Attachment(*r) for r in rows]

    def attachment(self, conversation_id: int, document_id: int) -> Attachment | None:
        row = self._c.execute(self._ATT_SQL + " WHERE a.conversation_id = ? AND a.document_id = ?",
                              (conversation_id, document_id)).fetchone()
        return Attachment(*row) if row else None

    def token_estimate(self, conversation_id: int) -> int:
        """About how many tokens ``full_text`` would take."""
        atts = self.attachments(conversation_id)
        labels = sum(len(a.name) + 12 for a in atts for _ in range(max(1, a.n_pages)))
        return estimate_tokens(sum(a.n_chars for a in atts) + labels)

    def _pages(self, document_id: int) -> Iterator[tuple[int | None, str]]:
        rows = self._c.execute(
            "SELECT page, char_start, char_end, text FROM chunks WHERE document_id = ? ORDER BY seq",
            (document_id,),
        ).fetchall()
        i = 0
        while i < len(rows):
            page = rows[i][0]
            j = i
            while j < len(rows) and rows[j][0] == page:
                j += 1
            yield page, stitch((r[1], r[2], r[3]) for r in rows[i:j])
            i = j

    def page_text(self, document_id: int, page: int | None) -> str:
        """One page's full text (offsets of its passages point into it), for a preview."""
        for number, text in self._pages(document_id):
            if number == page:
                return text
        return ""

    def document_text(self, document_id: int, name: str) -> str:
        parts = []
        for page, text in self._pages(document_id):
            parts.append(f"[{citation_label(name, page)}]\n{text.strip()}")
        return "\n\n".join(parts)

    def full_text(self, conversation_id: int) -> str:
        """Every attached document, page by page, each page labelled as it is cited."""
        docs = [f"# {a.name}\n\n{self.document_text(a.document_id, a.name)}" for a in self.attachments(conversation_id)]
        return "\n\n".join(docs)

    def passage(self, chunk_id: int, conversation_id: int) -> Passage | None:
        """A cited passage again (e.g. to open its preview)."""
        found = passages_by_id(self._c, conversation_id, [(chunk_id, 0.0)])
        return found[0] if found else None

    def leading_passages(self, conversation_id: int, per_document: int = 1) -> list[Passage]:
        """The first passages of each document: what to show when a question matches nothing."""
        rows = self._c.execute(
            "SELECT c.id FROM attachments a JOIN chunks c ON c.document_id = a.document_id"
            " WHERE a.conversation_id = ? AND c.seq < ? ORDER BY a.id, c.seq",
            (conversation_id, per_document),
        ).fetchall()
        return passages_by_id(self._c, conversation_id, [(r[0], 0.0) for r in rows])

    # ---- search ----------------------------------------------------------

    def search(self, conversation_id: int, query: str, k: int = 8) -> list[Passage]:
        """The passages that best answer ``query``, best first: BM25, fused with
        embedding similarity when an embedding model is set and vectors exist."""
        if k <= 0:
            return []
        c = self._c
        if self.embed_fn is None or self.embed_model is None:
            return bm25_search(c, conversation_id, query, k)
        lexical = bm25_search(c, conversation_id, query, max(k, HYBRID_CANDIDATES))
        # Chunks are embedded in order, so a document with any vectors has one for its first chunk.
        has_vectors = c.execute(
            "SELECT 1 FROM attachments a JOIN embeddings e ON e.model = ? AND e.chunk_id ="
            " (SELECT id FROM chunks WHERE document_id = a.document_id ORDER BY seq LIMIT 1)"
            " WHERE a.conversation_id = ? LIMIT 1",
            (self.embed_model, conversation_id),
        ).fetchone()
        if has_vectors is None:
            return lexical[:k]  # nothing embedded yet: no need to embed the question
        try:
            qv = self.embed_fn([query])[0]
        except (HearthError, IndexError) as exc:
            log.warning("query embedding failed, using keyword search only: %s", exc)
            return lexical[:k]
        nearest = vector_search(c, self._vectors, conversation_id, self.embed_model, qv, HYBRID_CANDIDATES)
        if not nearest:
            return lexical[:k]
        return fuse([lexical, passages_by_id(c, conversation_id, nearest)], k)

