"""The real main window driven like a user would, with the real engine on gemma 270M."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from tests.ui.dnd import drop_files
from ui.shell.main_window import NO_MODEL_TEXT, MainWindow
from tests.ui.helpers import send


def make_window(qtbot, ctx: AppContext) -> MainWindow:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    return win


def close_window(win: MainWindow) -> None:
    win.close()


@pytest.fixture
def window(qtbot, ctx: AppContext):
    win = make_window(qtbot, ctx)
    yield win
    close_window(win)


def load(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.controller.model_loaded, timeout=60000):
        win.open_model(str(path))


def test_typing_right_after_start_goes_to_the_message_box(qtbot, ctx: AppContext) -> None:
    """Seen on a real X display: the first word typed went to the focused "New chat" button and was lost."""
    from PySide6.QtWidgets import QApplication

    win = make_window(qtbot, ctx)
    win.activateWindow()
    qtbot.waitUntil(lambda: win.composer.edit.hasFocus(), timeout=5000)
    qtbot.keyClicks(QApplication.focusWidget(), "Hello there")
    assert win.composer.text() == "Hello there"
    close_window(win)


def test_opens_fast_without_a_model(qtbot, ctx: AppContext) -> None:
    win = make_window(qtbot, ctx)  # how fast: `make bench-quick` measures the cold start
    assert win.model_label.text() == "No model loaded"
    assert "No model is loaded" in win.chat_view.empty_label.text() or NO_MODEL_TEXT == win.chat_view.empty_label.text()
    actions = [a.text() for a in win.menuBar().actions()[0].menu().actions()]
    assert "&Open model…" in actions
    close_window(win)


def test_chat_streams_saves_and_lists(qtbot, window: MainWindow, gemma_path: Path) -> None:
    load(qtbot, window, gemma_path)
    assert "loaded" in window.model_label.text()
    deltas: list[str] = []
    window.controller.reply_delta.connect(lambda _m, _c, t: deltas.append(t))
    send(qtbot, window, "Tell me about Lisbon")
    assert deltas, "the reply streamed in pieces"
    store = window.ctx.store
    conv = store.list()[0]
    assert conv.title == "Tell me about Lisbon"
    msgs = store.messages(conv.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].status == "complete" and msgs[1].content
    w = window.chat_view.message_widget(msgs[1].id)
    assert w is not None and w.content_text == msgs[1].content
    assert "tok/s" in w.footer.text()
    assert window.composer.text() == ""
    assert window.sidebar.model.rowCount() == 2  # "Today" header + the chat
    assert "/" in window.composer.context_label.text()


def test_stop_keeps_the_partial_reply(qtbot, window: MainWindow, gemma_path: Path) -> None:
    window.ctx.settings.max_tokens = 3000
    window.ctx.settings.temperature = 0.9
    load(qtbot, window, gemma_path)
    got: list[str] = []
    window.controller.reply_delta.connect(lambda _m, _c, t: got.append(t))
    window.composer.set_text("Write a very long story")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len("".join(got)) > 20, timeout=30000)
    assert window.composer.send_button.text() == "Stop"
    with qtbot.waitSignal(window.controller.busy_changed, timeout=5000):
        qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
    msg = window.ctx.store.messages(window.conversation_id)[-1]
    assert msg.status == "stopped" and msg.content
    assert msg.stats["completion_tokens"] < 3000
    assert "Stopped" in window.chat_view.message_widget(msg.id).footer.text()


def test_regenerate_and_edit_and_resend(qtbot, window: MainWindow, gemma_path: Path) -> None:
    window.ctx.settings.temperature = 0.9
    load(qtbot, window, gemma_path)
    send(qtbot, window, "First question")
    send(qtbot, window, "Second question")
    store = window.ctx.store
    cid = window.conversation_id
    before = store.messages(cid)
    assert [m.role for m in before] == ["user", "assistant", "user", "assistant"]
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60000, check_params_cb=lambda b: b is False):
        window.regenerate()
    after = store.messages(cid)
    assert len(after) == 4 and after[3].id != before[3].id and after[2].id == before[2].id
    assert before[3].id not in window.chat_view.widgets and after[3].id in window.chat_view.widgets
    # Edit the first message: everything after it is replaced.
    first_user = after[0]
    qtbot.mouseClick(window.chat_view.message_widget(first_user.id).edit_button, Qt.MouseButton.LeftButton)
    assert window.composer.text() == "First question" and window.edit_banner.isVisible()
    send(qtbot, window, "First question, reworded")
    final = store.messages(cid)
    assert [m.role for m in final] == ["user", "assistant"]
    assert final[0].content == "First question, reworded"
    assert set(window.chat_view.widgets) == {m.id for m in final}
    # The bubble shows the new text at once (it used to keep the old one until reopened) ...
    bubble = window.chat_view.message_widget(final[0].id)
    assert "reworded" in bubble.body.text()
    # ... and nothing was thrown away: the old question and both of its branches are versions.
    assert bubble.versions_row.isVisibleTo(window) and bubble.version_label.text() == "2/2"
    qtbot.mouseClick(bubble.prev_version_button, Qt.MouseButton.LeftButton)
    old = store.messages(cid)
    assert [m.content for m in old][:3] == ["First question", after[1].content, "Second question"]
    assert len(old) == 4 and {m.id for m in old} == set(window.chat_view.widgets)
    reply = window.chat_view.message_widget(old[3].id)
    assert reply.version_label.text() == "2/2"  # the regenerated reply, with the first one kept


def test_rename_search_delete_undo(qtbot, window: MainWindow, gemma_path: Path, monkeypatch) -> None:
    load(qtbot, window, gemma_path)
    send(qtbot, window, "Plan a trip to Porto")
    cid = window.conversation_id
    monkeypatch.setattr("ui.shell.main_window.ask_title", lambda *a, **k: ("Porto trip", True))
    window.rename(cid)
    assert window.ctx.store.get(cid).title == "Porto trip"
    window.sidebar.search.setText("porto")
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 2, timeout=3000)
    window.sidebar.search.setText("zzzunfindable")
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 1, timeout=3000)  # "0 results" header
    window.sidebar.search.clear()
    window.delete(cid)
    assert window.ctx.store.list() == [] and window.undo_button.isVisible()
    window.undo_delete()
    assert window.ctx.store.get(cid).title == "Porto trip"
    assert len(window.ctx.store.messages(cid)) == 2


def test_history_survives_a_restart(qtbot, ctx: AppContext, gemma_path: Path) -> None:
    win = make_window(qtbot, ctx)
    load(qtbot, win, gemma_path)
    send(qtbot, win, "Remember the blue notebook")
    cid = win.conversation_id
    close_window(win)
    ctx.close()
    ctx2 = AppContext.create(ctx.paths.data_dir)
    win2 = make_window(qtbot, ctx2)
    try:
        assert win2.conversation_id == cid  # the last conversation is reopened
        texts = [w.content_text for w in win2.chat_view.widgets.values()]
        assert "Remember the blue notebook" in texts
        assert win2.sidebar.model.ids() == [cid]
    finally:
        close_window(win2)
        ctx2.close()


def test_killed_worker_keeps_partial_reply_and_reloads(qtbot, window: MainWindow, gemma_path: Path) -> None:
    window.ctx.settings.max_tokens = 3000
    window.ctx.settings.temperature = 0.9
    load(qtbot, window, gemma_path)
    got: list[str] = []
    window.controller.reply_delta.connect(lambda _m, _c, t: got.append(t))
    window.composer.set_text("Write a long essay")
    with qtbot.waitSignal(window.controller.reply_failed, timeout=60000) as failed:
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len("".join(got)) > 10, timeout=30000)
        time.sleep(1.2)  # past one save interval
        os.kill(window.controller.engine.pid, signal.SIGKILL)
    assert failed.args[2] == "worker_died" and "killed" in failed.args[1]
    qtbot.waitUntil(lambda: not window.controller.generating, timeout=5000)
    msg = window.ctx.store.messages(window.conversation_id)[-1]
    assert msg.status == "error" and msg.content and "killed" in msg.error
    w = window.chat_view.message_widget(msg.id)
    assert w.error_row.isVisible() and w.content_text == msg.content
    assert window.reload_button.isVisible()
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        qtbot.mouseClick(window.reload_button, Qt.MouseButton.LeftButton)
    window.ctx.settings.max_tokens = 5
    send(qtbot, window, "Are you back?")
    assert window.ctx.store.messages(window.conversation_id)[-1].status == "complete"


def test_bad_model_file_is_explained_and_app_keeps_running(qtbot, window: MainWindow, tmp_path: Path,
                                                           gemma_path: Path) -> None:
    bad = tmp_path / "holiday.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 64)
    with qtbot.waitSignal(window.controller.model_failed, timeout=30000) as sig:
        window.open_model(str(bad))
    assert "holiday.gguf" in sig.args[1]
    assert window.model_label.text() == "No model loaded"
    load(qtbot, window, gemma_path)
    send(qtbot, window, "still working?")
    assert window.ctx.store.messages(window.conversation_id)[-1].status == "complete"


def test_prompt_longer_than_context_gets_a_notice(qtbot, window: MainWindow, gemma_path: Path) -> None:
    window.ctx.settings.context_size = 512
    load(qtbot, window, gemma_path)
    huge = "lorem ipsum " * 90_000  # ~1 MB pasted
    with qtbot.waitSignal(window.controller.reply_failed, timeout=60000) as sig:
        window.composer.set_text(huge)
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    assert sig.args[2] == "context" and "context holds 512" in sig.args[1] and "document" in sig.args[1]
    qtbot.waitUntil(lambda: not window.controller.generating, timeout=5000)
    # Nothing was sent or saved, and what the user wrote is back in the composer, never lost.
    qtbot.waitUntil(lambda: window.composer.text() == huge, timeout=5000)
    assert window.ctx.store.list() == []


def test_empty_message_is_not_sent(qtbot, window: MainWindow, gemma_path: Path) -> None:
    load(qtbot, window, gemma_path)
    window.composer.set_text("   \n  ")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    assert not window.controller.generating and window.ctx.store.list() == []


def test_drop_a_gguf_file_opens_it(qtbot, window: MainWindow, gemma_path: Path) -> None:
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        assert drop_files(window, [gemma_path])
    assert window.controller.model_path == str(gemma_path)


def test_export_writes_markdown_and_json(qtbot, window: MainWindow, gemma_path: Path, tmp_path: Path,
                                         monkeypatch) -> None:
    import json as _json

    load(qtbot, window, gemma_path)
    send(qtbot, window, "Export me")
    target = tmp_path / "out.md"
    monkeypatch.setattr("ui.shell.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    window.export(window.conversation_id, "markdown")
    assert "## You\n\nExport me" in target.read_text()
    target = tmp_path / "out.json"
    window.export(window.conversation_id, "json")
    data = _json.loads(target.read_text())
    assert data["messages"][0]["content"] == "Export me" and data["messages"][1]["role"] == "assistant"
