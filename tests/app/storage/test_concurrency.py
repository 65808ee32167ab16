"""Two processes appending to one conversation: no message is lost, no seq repeats."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from app.context import AppContext

PER_PROCESS = 200


def _append(data_dir: str, conversation_id: int, tag: str, start: mp.synchronize.Event) -> None:
    ctx = AppContext.create(data_dir)  # as each `hearth chat` run does
    store = ctx.store
    start.wait(30)
    for i in range(PER_PROCESS):
        store.add_message(conversation_id, "user", f"{tag}-{i}")
    ctx.close()


def test_two_processes_append_every_message(tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path)
    store = ctx.store
    conv = store.create("shared")
    spawn = mp.get_context("spawn")
    start = spawn.Event()
    procs = [spawn.Process(target=_append, args=(str(tmp_path), conv.id, tag, start)) for tag in ("a", "b")]
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
    ctx.close()
