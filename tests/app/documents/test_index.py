"""The document index: retrieval, citations, dedup, removal, restarts, crashes, cancel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from app.documents.extract import extract
from app.documents.index import DocumentIndex
from app.documents.models import (
    Extracting, IngestCancelled, IngestDone, IngestFailed, IngestProgress, Indexing, Reading,
)
from app.documents.errors import EmptyDocument, PasswordRequired
from tests.support.pdfgen import PdfPage, write_pdf
from app.errors import EngineError
from app.storage import ConversationStore, Database
from tests.app.documents.corpus import ANSWER_BUDGET, build_corpus
from tests.app.documents.helpers import RC4Encryption, ingest, write_docx

ROOT = Path(__file__).resolve().parents[3]


def _counts(db: Database) -> tuple[int, int, int]:
    c = db.conn
    return tuple(int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[return-value]
                 for t in ("documents", "chunks", "attachments"))


def _fts_ok(db: Database) -> None:
    # Raises if the FTS index and the chunks table disagree.
    db.conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _long_pdf(path: Path, pages: int = 40) -> Path:
    return write_pdf(path, [
        f"Page {n} of the manual. " + " ".join(f"Step {n}.{k}: tighten bolt {k} with torque {n * k} Nm."
                                              for k in range(1, 60))
        for n in range(1, pages + 1)
    ])


# ---- retrieval and citations -------------------------------------------------------


def test_retrieval_finds_the_one_answer_among_50_documents(tmp_path: Path, index: DocumentIndex,
                                                            conv_id: int) -> None:
    files = build_corpus(tmp_path)
    assert len(files) == 50
    events = list(index.ingest_many(files.values(), conv_id))
    assert sum(isinstance(e, IngestDone) for e in events) == 50
    assert len(index.attachments(conv_id)) == 50

    best = index.search(conv_id, "What is the access code for the server room?", k=5)
    assert best[0].file == "facilities.pdf" and best[0].page == 3
    assert "7351" in best[0].text
    assert best[0].label == "facilities.pdf, p. 3"

    best = index.search(conv_id, "Who approved the budget for the spring festival?", k=5)
    assert (best[0].file, best[0].page) == ("festival.docx", 2)
    assert ANSWER_BUDGET in best[0].text and best[0].heading == "Money"


def test_citations_point_to_the_right_file_and_page(docs: Path, index: DocumentIndex, conv_id: int) -> None:
    facts = ["The boiler is serviced every October.", "Rent is due on the fifth day of each month.",
             "Pets need written consent from the landlord.", "The deposit is two months of rent.",
             "Either party may end the lease with ninety days notice."]
    filler = "This clause is standard and applies to all tenants of the building. " * 8
    lease = write_pdf(docs / "lease.pdf", [filler + "\n\n" + f + "\n\n" + filler for f in facts])
    rules = write_docx(docs / "rules.docx", [("h1", "General"), ("p", filler), ("break", ""),
                                             ("h1", "Bicycles"), ("p", "Bicycles are stored in the basement shed.")])
    for f in (lease, rules):
        assert isinstance(ingest(index, f, conv_id), IngestDone)
    questions = {
        "When is the boiler serviced?": 1, "When is rent due?": 2, "Can I keep pets?": 3,
        "How large is the deposit?": 4, "How much notice to end the lease?": 5,
    }
    for q, page in questions.items():
        top = index.search(conv_id, q, k=3)[0]
        assert (top.file, top.page) == ("lease.pdf", page), q
    top = index.search(conv_id, "Where are bicycles stored?")[0]
    assert (top.file, top.page, top.heading) == ("rules.docx", 2, "Bicycles")
    # The offsets locate the passage in its page (what the preview highlights).
    page_text = index.page_text(top.document_id, top.page)
    assert page_text[top.start:top.end] == top.text
    assert "basement shed" in page_text[top.start:top.end]
    again = index.passage(top.chunk_id, conv_id)
    assert again is not None and again.label == "rules.docx, p. 2"


def test_pages_are_stored_whole_and_in_order(docs: Path, index: DocumentIndex, conv_id: int) -> None:
    pdf = _long_pdf(docs / "manual.pdf", pages=6)
    done = ingest(index, pdf, conv_id)
    assert isinstance(done, IngestDone)
    pages = extract(pdf).pages
    for p in pages:
        assert index.page_text(done.attachment.document_id, p.number) == p.text
    full = index.full_text(conv_id)
    assert full.startswith("# manual.pdf")
    positions = [full.index(f"[manual.pdf, p. {n}]") for n in range(1, 7)]
    assert positions == sorted(positions)
    assert done.attachment.n_pages == 6 and done.attachment.kind == "pdf"
    assert index.token_estimate(conv_id) >= len(full) // 4


def test_search_survives_query_syntax_and_stopwords(docs: Path, index: DocumentIndex, conv_id: int) -> None:
    (docs / "a.txt").write_text("Torque values for the rear wheel are listed here.")
    ingest(index, docs / "a.txt", conv_id)
    for q in ('"rear" AND wheel*', "NEAR(torque) OR -x", "what's the (rear) wheel's torque?", '"', ""):
        index.search(conv_id, q)  # no FTS syntax error reaches the user
    assert index.search(conv_id, "what is it that they are?") == []  # stopwords only
    assert index.search(conv_id, "TORQUE values")[0].file == "a.txt"


def test_only_this_conversations_documents_are_searched(docs: Path, index: DocumentIndex,
                                                        store: ConversationStore) -> None:
    a, b = store.create().id, store.create().id
    (docs / "mine.txt").write_text("The spare key is under the blue flower pot.")
    (docs / "theirs.txt").write_text("The spare key is with the neighbour at number 12.")
    ingest(index, docs / "mine.txt", a)
    ingest(index, docs / "theirs.txt", b)
    assert [p.file for p in index.search(a, "where is the spare key")] == ["mine.txt"]
    assert [p.file for p in index.search(b, "where is the spare key")] == ["theirs.txt"]


# ---- attachments: dedup, removal, restarts ------------------------------------------


def test_same_content_is_indexed_once(docs: Path, index: DocumentIndex, store: ConversationStore,
                                      db: Database) -> None:
    a, b = store.create().id, store.create().id
    (docs / "v1.txt").write_text("Quarterly numbers: revenue 12.")
    (docs / "copy of v1.txt").write_text("Quarterly numbers: revenue 12.")
    first = ingest(index, docs / "v1.txt", a)
    second = ingest(index, docs / "copy of v1.txt", b)
    assert isinstance(first, IngestDone) and not first.reused
    assert isinstance(second, IngestDone) and second.reused
    assert first.attachment.document_id == second.attachment.document_id
    assert _counts(db)[0] == 1
    # Each conversation cites the file under the name it was added with.
    assert index.search(b, "quarterly revenue")[0].file == "copy of v1.txt"
    again = ingest(index, docs / "v1.txt", a)  # adding it twice to one chat is harmless
    assert isinstance(again, IngestDone) and len(index.attachments(a)) == 1


def test_remove_attachment(docs: Path, index: DocumentIndex, store: ConversationStore, db: Database) -> None:
    a, b = store.create().id, store.create().id
    (docs / "shared.txt").write_text("Shared facts about the garden shed.")
    doc_id = ingest(index, docs / "shared.txt", a).attachment.document_id  # type: ignore[attr-defined]
    ingest(index, docs / "shared.txt", b)
    index.remove_attachment(a, doc_id)
    assert index.attachments(a) == [] and index.search(a, "garden shed") == []
    assert index.search(b, "garden shed")[0].file == "shared.txt"  # still used by b
    index.remove_attachment(b, doc_id)
    assert _counts(db) == (0, 0, 0)  # nothing uses it: its index is gone
    _fts_ok(db)


def test_restart_keeps_attachments(tmp_path: Path, docs: Path) -> None:
    path = tmp_path / "h.sqlite3"
    db = Database(path)
    store = ConversationStore(db)
    conv = store.create().id
    index = DocumentIndex(db)
    pdf = write_pdf(docs / "minutes.pdf", ["Opening remarks.", "The vote passed seven to two."])
    (docs / "agenda.md").write_text("# Agenda\n\n1. Budget\n2. Vote on the new roof")
    ingest(index, pdf, conv)
    ingest(index, docs / "agenda.md", conv)
    db.close()

    db = Database(path)
    try:
        index = DocumentIndex(db)
        assert [a.name for a in index.attachments(conv)] == ["minutes.pdf", "agenda.md"]
        top = index.search(conv, "How did the vote go?")[0]
        assert (top.file, top.page) == ("minutes.pdf", 2)
        assert "**Attachments:** minutes.pdf, agenda.md" in ConversationStore(db).export_markdown(conv)
        assert index.recover() == 0  # nothing to clean after a normal restart
    finally:
        db.close()


def test_deleted_conversation_releases_its_documents(docs: Path, index: DocumentIndex, store: ConversationStore,
                                                    db: Database) -> None:
    conv = store.create().id
    (docs / "a.txt").write_text("Alpha beta gamma.")
    ingest(index, docs / "a.txt", conv)
    store.delete(conv)
    assert index.recover() == 1
    assert _counts(db) == (0, 0, 0)


# ---- bad input, cancel, crashes -------------------------------------------------------


def test_one_bad_file_never_blocks_the_others(docs: Path, index: DocumentIndex, conv_id: int,
                                              db: Database) -> None:
    (docs / "kept.txt").write_text("Ingested before the bad batch: the wifi password is on the fridge.")
    ingest(index, docs / "kept.txt", conv_id)
    (docs / "good1.md").write_text("# One\n\nThe first good file mentions tulips.")
    write_pdf(docs / "locked.pdf", ["hidden"], encryption=RC4Encryption("pw"))
    (docs / "empty.txt").write_bytes(b"")
    write_pdf(docs / "scan.pdf", [PdfPage(image=True)])
    (docs / "fake.pdf").write_bytes(b"\x7fELF" + bytes(500))
    (docs / "good2.txt").write_text("The second good file mentions daffodils.")
    order = ["good1.md", "locked.pdf", "empty.txt", "scan.pdf", "fake.pdf", "missing.docx", "good2.txt"]
    events = list(index.ingest_many([docs / n for n in order], conv_id))
    finals = {e.name: e for e in events if isinstance(e, (IngestDone, IngestFailed))}
    assert isinstance(finals["good1.md"], IngestDone) and isinstance(finals["good2.txt"], IngestDone)
    assert isinstance(finals["locked.pdf"].error, PasswordRequired)  # type: ignore[union-attr]
    assert isinstance(finals["empty.txt"].error, EmptyDocument)  # type: ignore[union-attr]
    for name in ("scan.pdf", "fake.pdf", "missing.docx"):
        assert isinstance(finals[name], IngestFailed) and name in finals[name].message  # type: ignore[union-attr]
    assert [a.name for a in index.attachments(conv_id)] == ["kept.txt", "good1.md", "good2.txt"]
    assert index.search(conv_id, "wifi password")[0].file == "kept.txt"
    assert _counts(db)[0] == 3
    _fts_ok(db)


def test_password_is_asked_then_the_file_is_added(docs: Path, index: DocumentIndex, conv_id: int) -> None:
    pdf = write_pdf(docs / "payslip.pdf", ["Net pay for May: 2,310 EUR."], encryption=RC4Encryption("s3cret"))
    first = ingest(index, pdf, conv_id)
    assert isinstance(first, IngestFailed) and isinstance(first.error, PasswordRequired)
    wrong = ingest(index, pdf, conv_id, password="nope")
    assert isinstance(wrong, IngestFailed) and wrong.error.wrong_password  # type: ignore[attr-defined]
    done = ingest(index, pdf, conv_id, password="s3cret")
    assert isinstance(done, IngestDone)
    assert "2,310" in index.search(conv_id, "net pay for May")[0].text


def test_progress_events(docs: Path, index: DocumentIndex, conv_id: int) -> None:
    events = list(index.ingest(_long_pdf(docs / "manual.pdf", pages=20), conv_id))
    kinds = {type(e) for e in events}
    assert {Reading, Extracting, Indexing, IngestDone} <= kinds
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    pages = [e.page for e in events if isinstance(e, Extracting)]
    assert pages[-1] == 20 and all(e.n_pages == 20 for e in events if isinstance(e, Extracting))
    idx = [e for e in events if isinstance(e, Indexing)]
    assert idx[-1].chunk == idx[-1].n_chunks == events[-1].attachment.n_chunks  # type: ignore[attr-defined]


def test_cancel_leaves_nothing(docs: Path, index: DocumentIndex, conv_id: int, db: Database) -> None:
    stop = threading.Event()
    events: list[IngestProgress] = []
    for ev in index.ingest(_long_pdf(docs / "manual.pdf"), conv_id, cancel=stop):
        events.append(ev)
        if isinstance(ev, Indexing):
            stop.set()
    assert isinstance(events[-1], IngestCancelled)
    assert _counts(db) == (0, 0, 0)
    _fts_ok(db)
    assert isinstance(ingest(index, docs / "manual.pdf", conv_id), IngestDone)  # and it can be added later


def test_error_in_the_middle_leaves_the_database_consistent(docs: Path, index: DocumentIndex, conv_id: int,
                                                            db: Database) -> None:
    pdf = _long_pdf(docs / "manual.pdf")
    calls = {"n": 0}

    def cancel() -> bool:  # fails while chunks are being written
        calls["n"] += 1
        if calls["n"] > 45:
            raise RuntimeError("simulated failure")
        return False

    gen = index.ingest(pdf, conv_id, cancel=cancel)
    with pytest.raises(RuntimeError, match="simulated"):
        for ev in gen:
            pass
    assert _counts(db) == (0, 0, 0)
    # A consumer that drops the generator half-way leaves nothing either.
    gen = index.ingest(pdf, conv_id)
    for ev in gen:
        if isinstance(ev, Indexing):
            break
    gen.close()
    assert _counts(db) == (0, 0, 0)
    _fts_ok(db)
    done = ingest(index, pdf, conv_id)
    assert isinstance(done, IngestDone) and not done.reused


_CRASH = textwrap.dedent("""
    import os, sys
    from app.storage import Database
    from app.documents.index import DocumentIndex
    from app.documents.models import Indexing
    db = Database(sys.argv[1])
    for ev in DocumentIndex(db).ingest(sys.argv[2], int(sys.argv[3])):
        if isinstance(ev, Indexing) and ev.chunk >= 48:
            os._exit(17)  # like a crash or a kill: no cleanup at all
    os._exit(3)
""")


def test_crash_mid_ingestion_then_add_again(tmp_path: Path, docs: Path) -> None:
    path = tmp_path / "h.sqlite3"
    db = Database(path)
    conv = ConversationStore(db).create().id
    db.close()
    pdf = _long_pdf(docs / "manual.pdf")
    r = subprocess.run([sys.executable, "-c", _CRASH, str(path), str(pdf), str(conv)], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 17, r.stderr
    db = Database(path)
    try:
        row = db.conn.execute("SELECT status FROM documents").fetchone()
        assert row[0] == "indexing" and _counts(db)[1] >= 48 and _counts(db)[2] == 0
        index = DocumentIndex(db)
        assert index.attachments(conv) == [] and index.search(conv, "tighten bolt") == []
        done = ingest(index, pdf, conv)  # the crashed leftover is cleaned, the file added anew
        assert isinstance(done, IngestDone) and not done.reused
        docs_, chunks, atts = _counts(db)
        assert (docs_, atts) == (1, 1) and chunks == done.attachment.n_chunks
        _fts_ok(db)
        assert index.search(conv, "Step 7.3 torque")[0].page == 7
    finally:
        db.close()


def test_same_file_added_from_two_threads_at_once(docs: Path, db: Database, store: ConversationStore) -> None:
    a, b = store.create().id, store.create().id
    pdf = _long_pdf(docs / "manual.pdf", pages=20)
    results: dict[int, IngestProgress] = {}

    def run(conv: int) -> None:
        results[conv] = ingest(DocumentIndex(db), pdf, conv)

    threads = [threading.Thread(target=run, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, IngestDone) for r in results.values())
    assert _counts(db) == (1, results[a].attachment.n_chunks, 2)  # type: ignore[attr-defined]
    _fts_ok(db)


# ---- embeddings (hybrid ranking) -------------------------------------------------------

_CONCEPTS = {"car": 0, "automobile": 0, "vehicle": 0, "tyres": 0, "banana": 1, "fruit": 1, "apple": 1,
             "invoice": 2, "bill": 2, "payment": 2}


def _concept_embed(texts: list[str]) -> list[list[float]]:
    """A small real embedding: words mapped to shared concept axes (synonyms meet)."""
    out = []
    for t in texts:
        v = [0.01] * 4
        for w in t.lower().replace(".", " ").replace("?", " ").split():
            if w in _CONCEPTS:
                v[_CONCEPTS[w]] += 1.0
        out.append(v)
    return out


def test_hybrid_search_finds_synonyms(docs: Path, db: Database, conv_id: int) -> None:
    index = DocumentIndex(db, embed_fn=_concept_embed, embed_model="concepts-v1")
    (docs / "garage.txt").write_text("The car needs new tyres before winter.")
    (docs / "kitchen.txt").write_text("Buy a banana and an apple at the market.")
    (docs / "office.txt").write_text("The invoice was sent to the customer in June.")
    for n in ("garage.txt", "kitchen.txt", "office.txt"):
        done = ingest(index, docs / n, conv_id)
        assert isinstance(done, IngestDone) and done.embedded
    assert DocumentIndex(db).search(conv_id, "automobile") == []  # keywords alone miss it
    assert index.search(conv_id, "automobile")[0].file == "garage.txt"
    assert index.search(conv_id, "which bill")[0].file == "office.txt"
    assert index.search(conv_id, "banana market")[0].file == "kitchen.txt"


def test_embedding_failure_falls_back_to_keywords_and_says_so(docs: Path, db: Database, conv_id: int) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise EngineError("No model is loaded.")

    index = DocumentIndex(db, embed_fn=broken, embed_model="x")
    (docs / "a.txt").write_text("Keyword search still works for sprockets.")
    done = ingest(index, docs / "a.txt", conv_id)
    assert isinstance(done, IngestDone) and not done.embedded and "keywords only" in done.note
    assert index.search(conv_id, "sprockets")[0].file == "a.txt"


@pytest.mark.slow
def test_embeddings_from_the_engine_worker(docs: Path, db: Database, conv_id: int, gemma_path: Path) -> None:
    """Real vectors: an embedding-mode model in the engine worker process."""
    from app.engine.client import EngineClient

    engine = EngineClient()
    try:
        # pooling_type 1 = mean: one vector per text (gemma's GGUF names no pooling).
        engine.load_blocking(str(gemma_path), {"embedding": True, "pooling_type": 1, "n_ctx": 512, "n_threads": 2})
        index = DocumentIndex(db, embed_fn=engine.embed, embed_model="gemma-3-270m")
        (docs / "a.txt").write_text("The cat sat on the warm windowsill all afternoon.")
        (docs / "b.txt").write_text("Quarterly revenue grew by twelve percent.")
        for n in ("a.txt", "b.txt"):
            done = ingest(index, docs / n, conv_id)
            assert isinstance(done, IngestDone) and done.embedded, getattr(done, "note", "")
        dims = {len(r[0]) for r in db.conn.execute("SELECT vector FROM embeddings")}
        assert len(dims) == 1 and dims.pop() >= 4 * 64  # float32 vectors of the model's width
        hits = index.search(conv_id, "How did revenue change this quarter?", k=2)
        assert hits[0].file == "b.txt"
        assert {p.file for p in index.search(conv_id, "kitten", k=2)} <= {"a.txt", "b.txt"}
    finally:
        engine.close()
