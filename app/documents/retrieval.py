"""Ranking passages for a question: FTS5 BM25, and embeddings fused in when there are any.

The MATCH query ORs the question's content words (stopwords dropped, each quoted
so FTS syntax in a question cannot break the query). Hybrid ranking fuses the
BM25 and cosine rankings with reciprocal-rank fusion, which needs no score
calibration between the two.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from app.documents.models import Passage

log = logging.getLogger(__name__)

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can cannot could couldn did didn do does doesn doing don down during each either else
etc even ever every few for from further get gets got had hadn has hasn have haven having he her here hers
herself him himself his how i if in into is isn it its itself just let lets like ll may me might more most
much must mustn my myself no nor not now of off on once only or other ought our ours ourselves out over own
per please re really said same say says shall shan she should shouldn since so some such tell than that the
their theirs them themselves then there these they this those though through thus to too under until up upon
us ve very via was wasn we were weren what when where whether which while who whom whose why will with
within without won would wouldn yes yet you your yours yourself yourselves
""".split())

_WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32
RRF_K = 60  # the usual reciprocal-rank-fusion constant
HYBRID_CANDIDATES = 40


def query_terms(question: str) -> list[str]:
    """The question's content words, lower-cased, de-duplicated, in order.

    A word made of parts joined by punctuation ("17.4", "wi-fi", "v2.1") also
    gives the parts as a phrase ("17 4"), which the index matches only where
    they stand together, so such words rank their own passages first.
    """
    seen: dict[str, None] = {}
    for piece in question.lower().split():
        parts = [w.strip("_") for w in _WORD_RE.findall(piece)]
        parts = [w for w in parts if w]
        if len(parts) > 1:
            seen.setdefault(" ".join(parts), None)
        for w in parts:
            if w in STOPWORDS or (len(w) == 1 and not w.isdigit()):
                continue
            seen.setdefault(w, None)
    return list(seen)[:MAX_TERMS]


def fts_query(terms: Sequence[str]) -> str | None:
    """An FTS5 MATCH expression that ORs the terms (None when there are none)."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', "") + '"' for t in terms)


_PASSAGE_COLS = "c.id, c.document_id, c.page, c.char_start, c.char_end, c.heading, c.text, a.name"


def _passage(row: Any, score: float) -> Passage:
    return Passage(
        file=row[7], page=row[2], text=row[6], start=row[3], end=row[4], score=score, chunk_id=row[0],
        document_id=row[1], heading=row[5] or None,
    )


def chunk_id_ranges(c: sqlite3.Connection, conversation_id: int) -> list[tuple[int, int]]:
    """The conversation's chunk ids as merged (first, last) ranges.

    A document's chunks get consecutive ids (AUTOINCREMENT, one document at a
    time), so a handful of ranges lets FTS5 score only this conversation's
    passages instead of every passage in the database.
    """
    spans = []
    for (doc_id,) in c.execute("SELECT document_id FROM attachments WHERE conversation_id = ?", (conversation_id,)):
        first = c.execute("SELECT id FROM chunks WHERE document_id = ? ORDER BY seq LIMIT 1", (doc_id,)).fetchone()
        last = c.execute("SELECT id FROM chunks WHERE document_id = ? ORDER BY seq DESC LIMIT 1", (doc_id,)).fetchone()
        if first is not None and last is not None:
            spans.append((min(first[0], last[0]), max(first[0], last[0])))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


_RANKED_SQL = (
    "SELECT rowid, bm25(chunks_fts, 1.0, 0.5) AS s FROM chunks_fts"
    " WHERE chunks_fts MATCH ? AND rowid BETWEEN ? AND ? ORDER BY s LIMIT ?"
)


def bm25_search(c: sqlite3.Connection, conversation_id: int, query: str, limit: int) -> list[Passage]:
    """Best BM25 passages among the conversation's documents (score: higher is better)."""
    match = fts_query(query_terms(query))
    if match is None or limit <= 0:
        return []
    ranges = chunk_id_ranges(c, conversation_id)
    # Ranges of documents added at the same time interleave and hold other
    # conversations' chunks too; ask for spares and widen if they ran out.
    for want in (limit * 4, -1):
        scored: list[tuple[int, float]] = []
        full = False
        for lo, hi in ranges:
            rows = c.execute(_RANKED_SQL, (match, lo, hi, want)).fetchall()
            full = full or len(rows) == want
            # FTS5's bm25() is negative, more negative = better.
            scored.extend((int(r[0]), -float(r[1])) for r in rows)
        scored.sort(key=lambda x: -x[1])
        found = passages_by_id(c, conversation_id, scored)
        if len(found) >= limit or not full:
            return found[:limit]
    return found[:limit]


def passages_by_id(c: sqlite3.Connection, conversation_id: int, scored: Sequence[tuple[int, float]]) -> list[Passage]:
    """Passages for chunk ids, in the given order, with the given scores."""
    if not scored:
        return []
    ids = [cid for cid, _ in scored]
    marks = ",".join("?" * len(ids))
    rows = c.execute(
        f"SELECT {_PASSAGE_COLS} FROM chunks c"
        " JOIN attachments a ON a.document_id = c.document_id AND a.conversation_id = ?"
        f" WHERE c.id IN ({marks})",
        (conversation_id, *ids),
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    return [_passage(by_id[cid], s) for cid, s in scored if cid in by_id]


def fuse(rankings: Iterable[Sequence[Passage]], k: int) -> list[Passage]:
    """Reciprocal-rank fusion of several rankings; the score becomes the fused score."""
    scores: dict[int, float] = {}
    first: dict[int, Passage] = {}
    for ranking in rankings:
        for rank, p in enumerate(ranking):
            scores[p.chunk_id] = scores.get(p.chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            first.setdefault(p.chunk_id, p)
    order = sorted(scores, key=lambda cid: -scores[cid])[:k]
    out = []
    for cid in order:
        p = first[cid]
        out.append(Passage(p.file, p.page, p.text, p.start, p.end, scores[cid], p.chunk_id, p.document_id,
                           p.heading))
    return out


def to_blob(vector: Sequence[float]) -> bytes:
    v = np.asarray(vector, dtype=np.float32)
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32).tobytes()


class VectorCache:
    """Per-document embedding matrices in memory: loading 20k vectors per question would be slow.

    Documents never change once ready and their ids are never reused, so an
    entry stays valid until the document is removed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}

    def forget(self, document_id: int) -> None:
        with self._lock:
            for key in [k for k in self._docs if k[0] == document_id]:
                del self._docs[key]

    def matrix(self, c: sqlite3.Connection, document_id: int, model: str,
               n_chunks: int) -> tuple[np.ndarray, np.ndarray] | None:
        key = (document_id, model)
        with self._lock:
            hit = self._docs.get(key)
        if hit is not None:
            return hit
        rows = c.execute(
            "SELECT e.chunk_id, e.vector FROM embeddings e JOIN chunks c ON c.id = e.chunk_id"
            " WHERE c.document_id = ? AND e.model = ? ORDER BY e.chunk_id",
            (document_id, model),
        ).fetchall()
        if not rows:
            return None
        dim = len(rows[0][1]) // 4
        keep = [r for r in rows if len(r[1]) == dim * 4]
        ids = np.fromiter((r[0] for r in keep), dtype=np.int64, count=len(keep))
        mat = np.frombuffer(b"".join(r[1] for r in keep), dtype=np.float32).reshape(len(keep), dim)
        entry = (ids, mat)
        if len(keep) == n_chunks:
            # Only complete sets are cached: a document still being embedded would go stale.
            with self._lock:
                self._docs[key] = entry
        return entry


def vector_search(c: sqlite3.Connection, cache: VectorCache, conversation_id: int, model: str,
                  query_vector: Sequence[float], limit: int) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the nearest passages among the conversation's documents."""
    q = np.asarray(query_vector, dtype=np.float32)
    norm = float(np.linalg.norm(q))
    if norm == 0:
        return []
    q = q / norm
    docs = c.execute(
        "SELECT d.id, d.n_chunks FROM attachments a JOIN documents d ON d.id = a.document_id"
        " WHERE a.conversation_id = ?", (conversation_id,),
    ).fetchall()
    best_ids: list[np.ndarray] = []
    best_scores: list[np.ndarray] = []
    for doc_id, n_chunks in docs:
        entry = cache.matrix(c, doc_id, model, n_chunks)
        if entry is None or entry[1].shape[1] != q.shape[0]:
            continue
        ids, mat = entry
        scores = mat @ q
        if len(scores) > limit:
            top = np.argpartition(-scores, limit)[:limit]
            ids, scores = ids[top], scores[top]
        best_ids.append(ids)
        best_scores.append(scores)
    if not best_ids:
        return []
    all_ids = np.concatenate(best_ids)
    all_scores = np.concatenate(best_scores)
    order = np.argsort(-all_scores)[:limit]
    return [(int(all_ids[i]), float(all_scores[i])) for i in order]
