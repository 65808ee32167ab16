"""Two processes appending to one conversation: no message is lost, no seq repeats."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from app.storage import ConversationStore, Database

PER_PROCESS = 200


def _append(path: str, conversation_id: int, tag: str, start: mp.synchronize.Event) -> None:
    db = Database(path)
    store = ConversationStore(db)
    start.wait(30)
    for i in range(PER_PROCESS):
        store.add_message(conversation_id, "user", f"{tag}-{i}")
    db.close()


def test_two_processes_append_every_message(tmp_path: Path) -> None:
    path = tmp_path / "hearth.db"
    db = Database(path)
    store = ConversationStore(db)
    conv = store.create("shared")
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_append, args=(str(path), conv.id, tag, start)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    msgs = store.messages(conv.id)
    assert len(msgs) == 2 * PER_PROCESS
    assert [m.seq for m in msgs] == list(range(2 * PER_PROCESS))
    assert {m.content for m in msgs} == {f"{t}-{i}" for t in "ab" for i in range(PER_PROCESS)}
    # Each process's own messages stay in the order it sent them.
    for tag in "ab":
        mine = [int(m.content.split("-")[1]) for m in msgs if m.content.startswith(tag)]
        assert mine == list(range(PER_PROCESS))
    db.close()
