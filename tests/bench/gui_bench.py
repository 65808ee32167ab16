"""GUI figures: cold start, memory, opening a long conversation, stalls while streaming."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def cold_start(data_dir: Path, runs: int = 3) -> dict[str, float]:
    """Process start to main window shown, and the GUI process's RSS then (no model)."""
    best_wall, rss = [], 0
    env = dict(os.environ, HEARTH_EXIT_AFTER_SHOW="1", QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "ui.shell.entry", "--data-dir", str(data_dir)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ""
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith("HEARTH_SHOWN"):
                break
        wall = time.perf_counter() - t0
        p.wait(30)
        fields = dict(kv.split("=") for kv in line.split()[1:])
        best_wall.append(wall * 1000)
        rss = int(fields["rss"])
    # Baseline: the interpreter alone, started the same way.
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_ms = (time.perf_counter() - t0) * 1000
    return {"cold_start_ms": min(best_wall), "python_start_ms": python_ms, "gui_rss_bytes": rss}


def _populate(store: Any, n_messages: int) -> int:
    conv = store.create("Long conversation")
    for i in range(n_messages):
        role = "user" if i % 2 == 0 else "assistant"
        text = (f"Question {i}: how does part {i} work?" if role == "user"
                else f"Part {i} works like this:\n\n- step one\n- step two\n\n```python\nprint({i})\n```\n")
        store.add_message(conv.id, role, text)
    return conv.id


def streaming_stall(tmp: Path, n_messages: int = 1000, n_tokens: int = 1000, tok_per_s: float = 200.0) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.chat import Delta
    from app.context import AppContext
    from ui.shell.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    ctx = AppContext.create(tmp / "gui-bench")
    cid = _populate(ctx.store, n_messages)
    win = MainWindow(ctx)
    win.show()
    app.processEvents()
    t0 = time.perf_counter()
    win.sidebar.select(cid)
    app.processEvents()
    open_ms = (time.perf_counter() - t0) * 1000
    # A streaming reply at the end of the conversation.
    reply = ctx.store.add_message(cid, "assistant", "", status="streaming")
    win.chat_view.add_message(reply)
    app.processEvents()
    ctrl = win.controller
    stalls: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick() -> None:
        now = clock.elapsed()
        stalls.append(now - last[0])
        last[0] = now

    watchdog = QTimer()
    watchdog.setInterval(2)
    watchdog.timeout.connect(tick)
    watchdog.start()
    done = threading.Event()
    words = ["Hearth ", "keeps ", "**every** ", "token ", "local", ", ", "and ", "`code` ", "too.\n\n"]

    def produce(_cancel: object) -> Any:
        # What a turn's generator yields, at the given speed, through the window's own job runner.
        for i in range(n_tokens):
            yield Delta(reply.id, "final", words[i % len(words)], 1)
            time.sleep(1.0 / tok_per_s)

    ctrl.set_streaming(True)  # as ChatController does when a turn starts
    ctrl.jobs.stream("bench", produce, on_batch=ctrl._on_batch, on_done=lambda *_: done.set())  # noqa: SLF001
    while not done.is_set():
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    watchdog.stop()
    ctrl.set_streaming(False)
    shown = win.chat_view.message_widget(reply.id).content_text
    assert shown.count("token") == sum(1 for i in range(n_tokens) if words[i % len(words)] == "token ")
    win.close()
    ctx.close()
    top = sorted(stalls)[-5:]
    return {"open_conversation_ms": open_ms, "worst_stall_ms": max(stalls) if stalls else 0.0, "top_stalls_ms": top,
            "timer_interval_ms": 2.0, "messages": n_messages, "tokens": n_tokens}
