"""History at scale: 10,000 conversations, 200,000 messages."""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from app.storage import ConversationStore, Database

WORDS = ("lease clause repair garden invoice travel lisbon porto recipe bread python error report budget "
         "meeting notes plan river mountain engine token model memory cache window draft letter").split()


def build(path: Path, n_conv: int, n_msg: int) -> ConversationStore:
    db = Database(path)
    store = ConversationStore(db)
    c = db.conn
    rnd = random.Random(7)
    per = n_msg // n_conv
    now = time.time()
    c.execute("BEGIN")
    for i in range(n_conv):
        cur = c.execute("INSERT INTO conversations(title, created_at, updated_at) VALUES (?,?,?)",
                        (f"Chat {i} about {rnd.choice(WORDS)}", now - i * 60, now - i * 60))
        cid = cur.lastrowid
        rows = []
        for j in range(per):
            text = " ".join(rnd.choice(WORDS) for _ in range(30))
            rows.append((cid, j, "user" if j % 2 == 0 else "assistant", text, "", now - i * 60))
        c.executemany("INSERT INTO messages(conversation_id, seq, role, content, thinking, created_at)"
                      " VALUES (?,?,?,?,?,?)", rows)
    c.execute("COMMIT")
    return store


def _time(fn: Callable[[], Any], n: int = 20) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def run(tmp: Path, n_conv: int = 10_000, n_msg: int = 200_000) -> dict[str, Any]:
    t0 = time.perf_counter()
    store = build(tmp / "history-bench.sqlite3", n_conv, n_msg)
    build_s = time.perf_counter() - t0
    mid = n_conv // 2 + 1
    out = {
        "conversations": n_conv,
        "messages": n_msg,
        "build_s": build_s,
        "list_ms": _time(lambda: store.list(limit=200)),
        "open_ms": _time(lambda: store.messages(mid, limit=40)),
        "search_ms": _time(lambda: store.search("lisbon invoice")),
        "search_rare_ms": _time(lambda: store.search("Chat 4242")),
    }
    # Baseline: the plain SQL a minimal app would run for the same three things.
    raw = sqlite3.connect(tmp / "history-bench.sqlite3")
    out["baseline_list_ms"] = _time(lambda: raw.execute(
        "SELECT * FROM conversations ORDER BY updated_at DESC LIMIT 200").fetchall())
    out["baseline_open_ms"] = _time(lambda: raw.execute(
        "SELECT * FROM messages WHERE conversation_id=? ORDER BY seq DESC LIMIT 40", (mid,)).fetchall())
    out["baseline_search_ms"] = _time(lambda: raw.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'lisbon invoice' LIMIT 200").fetchall())
    raw.close()
    store.db.close()
    return out
