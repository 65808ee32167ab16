"""Benchmarks for the documents core: ingesting a long PDF, retrieval over many
chunks, and how long another thread waits on the database during ingestion.

Each makes its own database and files under ``tmpdir``.
"""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from pathlib import Path

from app.documents.index import DocumentIndex
from app.documents.models import IngestDone, IngestProgress
from tests.support.pdfgen import write_pdf
from app.storage.conversations import ConversationStore
from app.storage.db import Database

log = logging.getLogger(__name__)

_WORDS = ("contract tenant landlord payment invoice delivery schedule warranty liability insurance notice "
          "termination renewal deposit maintenance repair property premises agreement party obligation "
          "clause section period month year amount interest penalty default remedy dispute arbitration court "
          "law jurisdiction confidential information disclosure breach consent assignment transfer sublease "
          "utility service charge tax fee rate budget report quarter revenue cost margin forecast risk audit").split()
_QUESTIONS = (
    "When must the tenant give notice of termination?",
    "What is the penalty for late payment of the invoice?",
    "Who pays for maintenance and repair of the premises?",
    "How is a dispute resolved, by arbitration or in court?",
    "What does the warranty cover and for which period?",
    "Can the tenant sublease or assign the agreement?",
    "What insurance must the landlord carry?",
    "Which law governs the contract and jurisdiction?",
)


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    # Common words plus many rare ones, so postings lists look like real text.
    letters = "abcdefghijklmnopqrstuvwxyz"
    rare = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(n)]
    return _WORDS * 20 + rare


def _page_text(rng: random.Random, vocab: list[str], chars: int) -> str:
    parts: list[str] = []
    size = 0
    while size < chars:
        para = " ".join(_sentence(rng, vocab) for _ in range(rng.randint(3, 6)))
        parts.append(para)
        size += len(para) + 2
    return "\n\n".join(parts)


def _paragraph(rng: random.Random, vocab: list[str], lo: int = 700, hi: int = 950) -> str:
    """A paragraph of lo..hi characters; separated by blank lines, each makes exactly one chunk."""
    while True:
        para = ""
        while len(para) < lo:
            para = (para + " " + _sentence(rng, vocab)).strip()
        if len(para) <= hi:
            return para


def _run(index: DocumentIndex, path: Path, conversation_id: int) -> IngestProgress:
    last: IngestProgress | None = None
    for ev in index.ingest(path, conversation_id):
        last = ev
    if not isinstance(last, IngestDone):
        raise RuntimeError(f"ingesting {path.name} did not finish: {last}")
    return last


def bench_ingest_pdf(tmpdir: str | Path, pages: int = 300) -> float:
    """Seconds to ingest a ``pages``-page text PDF (about 3,000 characters a page; BM25 only)."""
    tmp = Path(tmpdir)
    rng = random.Random(300)
    vocab = _vocabulary(rng)
    pdf = write_pdf(tmp / "bench.pdf", [_page_text(rng, vocab, 3000) for _ in range(pages)])
    db = Database(tmp / "bench-ingest.sqlite3")
    try:
        conv = ConversationStore(db).create()
        t0 = time.perf_counter()
        _run(DocumentIndex(db), pdf, conv.id)
        return time.perf_counter() - t0
    finally:
        db.close()


def build_chunk_corpus(db: Database, tmp: Path, n_chunks: int, docs: int = 20) -> int:
    """A conversation with about ``n_chunks`` chunks over ``docs`` text files; returns its id."""
    rng = random.Random(n_chunks)
    vocab = _vocabulary(rng)
    conv = ConversationStore(db).create()
    index = DocumentIndex(db)
    per_doc = max(1, n_chunks // docs)
    for d in range(docs):
        f = tmp / f"corpus-{d:03d}.txt"
        f.write_text("\n\n".join(_paragraph(rng, vocab) for _ in range(per_doc)), encoding="utf-8")
        _run(index, f, conv.id)
    return conv.id


def bench_retrieval(tmpdir: str | Path, n_chunks: int = 20000, repeats: int = 3) -> float:
    """Median milliseconds for one search over ``n_chunks`` chunks (after a warm-up;
    the worst is logged).

    The questions share words with about a third of all chunks each: a hard case for BM25.
    """
    tmp = Path(tmpdir)
    db = Database(tmp / "bench-retrieval.sqlite3")
    try:
        conv_id = build_chunk_corpus(db, tmp, n_chunks)
        index = DocumentIndex(db)
        got = int(db.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        if abs(got - n_chunks) > n_chunks // 100:
            raise RuntimeError(f"the corpus has {got} chunks, not about {n_chunks}")
        index.search(conv_id, _QUESTIONS[0])
        times = []
        for _ in range(repeats):
            for q in _QUESTIONS:
                t0 = time.perf_counter()
                index.search(conv_id, q, k=8)
                times.append((time.perf_counter() - t0) * 1000)
        log.info("retrieval over %d chunks: median %.1f ms, worst %.1f ms", n_chunks,
                 statistics.median(times), max(times))
        return statistics.median(times)
    finally:
        db.close()


def bench_wait_during_ingest(tmpdir: str | Path, pages: int = 300) -> float:
    """Worst milliseconds another thread waits for a small read and write (as the chat
    does) while a ``pages``-page PDF is being ingested."""
    tmp = Path(tmpdir)
    rng = random.Random(7)
    vocab = _vocabulary(rng)
    pdf = write_pdf(tmp / "bench-wait.pdf", [_page_text(rng, vocab, 3000) for _ in range(pages)])
    db = Database(tmp / "bench-wait.sqlite3")
    try:
        store = ConversationStore(db)
        conv = store.create()
        worst = 0.0
        done = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                _run(DocumentIndex(db), pdf, conv.id)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=work, name="bench-ingest")
        worker.start()
        while not done.is_set():
            t0 = time.perf_counter()
            store.add_message(conv.id, "user", "ping")
            store.messages(conv.id, limit=5)
            worst = max(worst, (time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
        worker.join()
        if errors:
            raise errors[0]
        return worst
    finally:
        db.close()
